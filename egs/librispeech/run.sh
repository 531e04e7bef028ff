#!/usr/bin/env bash
# librispeech: TASU as the paper trains it. Text-only alignment from the 960 h transcripts with
# a frozen SenseVoiceSmall CTC encoder and a frozen Qwen2.5-1.5B-Instruct, only the projector
# trained (conf/train.yaml); zero-shot ASR on dev/test-clean/other. GPU scale: see RESULTS.md.
#   ./run.sh --ngpu 1 --sensevoice /path/to/SenseVoiceSmall          # stages 0-6
#   ./run.sh --ngpu 1 --sensevoice <dir> --train_config conf/tuning/train_lora.yaml   # + LoRA
#   ./run.sh --ngpu 1 --sensevoice <dir> --paired_set train_clean_100   # + stage 3 (curriculum)
# The corpus location is in db.sh. Another encoder: --encoder <spec> instead of --sensevoice.
set -euo pipefail

sensevoice=""        # the SenseVoiceSmall model dir (FunASR's iic/SenseVoiceSmall: model.pt, config.yaml, ...)
train_set=train_960  # text only
valid_set=dev_clean  # its transcripts give the dev loss
test_sets="dev_clean dev_other test_clean test_other"   # dev_*: for choosing settings
train_config=conf/train.yaml
decode_config=conf/decode.yaml
encoder=""
posterior_topk=16    # stage 1 stores each PSD row's 16 most probable of SenseVoice's 25 055 units (0: dense)
args=()
while [ $# -gt 0 ]; do  # --sensevoice is this recipe's; everything else goes to tasu.sh
    case "$1" in
        --sensevoice) sensevoice=$2; shift 2 ;;
        --encoder) encoder=$2; shift 2 ;;
        --posterior_topk) posterior_topk=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -z "${encoder}" ]; then
    [ -n "${sensevoice}" ] || { echo "$0: give --sensevoice <SenseVoiceSmall dir> (or --encoder <spec>)" >&2; exit 1; }
    encoder="sensevoice:${sensevoice}"
fi

./tasu.sh --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
    --encoder "${encoder}" --train_config "${train_config}" --decode_config "${decode_config}" \
    --posterior_topk "${posterior_topk}" "${args[@]}"
