#!/usr/bin/env bash
# covost2: English speech translation (CoVoST 2) with TASU. Text-only training of transcription
# and translation from CoVoST 2's (transcript, translation) pairs with the paper's parts; decoding
# of the dev and test clips of Common Voice; WER and BLEU (sacrebleu; its zh tokenizer for Chinese).
#   ./run.sh --ngpu 1 --sensevoice /path/to/SenseVoiceSmall                   # en -> zh, stages 0-5
#   ./run.sh --ngpu 1 --sensevoice <dir> --tgt de --train_config conf/tuning/train_en_de.yaml
# The corpus locations are in db.sh; RESULTS.md has every row's command.
set -euo pipefail

sensevoice=""        # the SenseVoiceSmall model dir (FunASR's iic/SenseVoiceSmall)
encoder=""           # or any encoder spec of tasu.sh (e.g. hf:<dir>)
tgt=zh-CN            # target language as CoVoST 2 names it (de, zh-CN, ...)
train_config=conf/train.yaml
decode_config=conf/decode.yaml
stage=0
stop_stage=10000
inference_tag=""
args=()
while [ $# -gt 0 ]; do  # these are run.sh's; everything else goes to tasu.sh
    case "$1" in
        --sensevoice|--encoder|--tgt|--train_config|--decode_config|--stage|--stop_stage|--inference_tag)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
            name=${1#--}; printf -v "${name}" '%s' "$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -z "${encoder}" ]; then
    [ -n "${sensevoice}" ] || { echo "$0: give --sensevoice <SenseVoiceSmall dir> (or --encoder <spec>)" >&2; exit 1; }
    encoder="sensevoice:${sensevoice}"
fi
t=${tgt%%-*}
# stage 1 stores each PSD row's 16 most probable of SenseVoice's 25 055 units (--posterior_topk 0: dense)
common=(--posterior_topk 16 --train_set "train_en_${t}" --valid_set "dev_en_${t}" --test_sets "dev_en_${t} test_en_${t}"
        --encoder "${encoder}" --train_config "${train_config}" --decode_config "${decode_config}"
        --tasks_file conf/tasks.yaml --local_data_opts "--tgt ${tgt}")

# every stage, transcription in 4-5; then stages 4-5 of the translation task: decode_<set>_st_<t>
./tasu.sh "${common[@]}" --stage "${stage}" --stop_stage "${stop_stage}" --inference_tag "${inference_tag}" "${args[@]}"
first=$(( stage > 4 ? stage : 4 ))
last=$(( stop_stage < 5 ? stop_stage : 5 ))
if [ "${first}" -le "${last}" ]; then
    ./tasu.sh "${common[@]}" --stage "${first}" --stop_stage "${last}" --task "st_${t}" \
        --inference_tag "st_${t}${inference_tag:+_${inference_tag}}" "${args[@]}"
fi
