#!/usr/bin/env bash
# slurp: spoken language understanding (SLURP) with TASU. Text-only training of transcription and
# the SLU labels (scenario, action, intent) from SLURP's sentences with the paper's parts; decoding
# of SLURP's devel and test recordings, every task scored (accuracy as SLURP's scorer counts it).
#   ./run.sh --ngpu 1 --sensevoice /path/to/SenseVoiceSmall                       # multi-task, stages 0-5
#   ./run.sh --ngpu 1 --sensevoice <dir> --train_config conf/tuning/train_asr.yaml  # zero-shot rows
#   ./run.sh --ngpu 1 --sensevoice <dir> --stage 4 --cascade_from exp/tasu_train_asr_sensevoice_SenseVoiceSmall \
#       --inference_tag cascade                                                   # cascade rows
# The corpus location is in db.sh; RESULTS.md has every row's command.
set -euo pipefail

sensevoice=""        # the SenseVoiceSmall model dir (FunASR's iic/SenseVoiceSmall)
encoder=""           # or any encoder spec of tasu.sh (e.g. hf:<dir>)
train_set=train      # text only (with scenario, action, intent answers)
valid_set=devel      # its transcripts give the dev loss
test_sets="devel test"
train_config=conf/train.yaml
decode_config=conf/decode.yaml
slu_tasks="scenario action intent"   # stages 4-5 also ask these (after transcription)
stage=0
stop_stage=10000
inference_tag=""
cascade_from=""      # an ASR model's exp dir: stages 4-5 read its transcripts instead of the speech (SLU tasks only)
args=()
while [ $# -gt 0 ]; do  # these are run.sh's; everything else goes to tasu.sh
    case "$1" in
        --sensevoice|--encoder|--train_set|--valid_set|--test_sets|--train_config|--decode_config|--slu_tasks|\
        --stage|--stop_stage|--inference_tag|--cascade_from)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
            name=${1#--}; printf -v "${name}" '%s' "$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -z "${encoder}" ]; then
    [ -n "${sensevoice}" ] || { echo "$0: give --sensevoice <SenseVoiceSmall dir> (or --encoder <spec>)" >&2; exit 1; }
    encoder="sensevoice:${sensevoice}"
fi
# stage 1 stores each PSD row's 16 most probable of SenseVoice's 25 055 units (--posterior_topk 0: dense)
common=(--posterior_topk 16 --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}"
        --encoder "${encoder}"
        --train_config "${train_config}" --decode_config "${decode_config}" --tasks_file conf/tasks.yaml)

# every stage, transcription in 4-5 (a cascade transcribes nothing: its transcripts are another model's)
main_stop=${stop_stage}
[ -z "${cascade_from}" ] || main_stop=$(( stop_stage < 3 ? stop_stage : 3 ))
if [ "${stage}" -le "${main_stop}" ]; then
    ./tasu.sh "${common[@]}" --stage "${stage}" --stop_stage "${main_stop}" --inference_tag "${inference_tag}" "${args[@]}"
fi
# stages 4-5 again for each SLU task: decode_<set>_<task>[_<inference_tag>]
first=$(( stage > 4 ? stage : 4 ))
last=$(( stop_stage < 5 ? stop_stage : 5 ))
cascade=()
[ -z "${cascade_from}" ] || cascade=(--cascade_from "${cascade_from}")
if [ "${first}" -le "${last}" ]; then
    for task in ${slu_tasks}; do
        ./tasu.sh "${common[@]}" --stage "${first}" --stop_stage "${last}" --task "${task}" \
            --inference_tag "${task}${inference_tag:+_${inference_tag}}" "${cascade[@]}" "${args[@]}"
    done
fi
