#!/usr/bin/env bash
# Stage 0 of librispeech: Kaldi data dirs from the official layout (LIBRISPEECH in db.sh).
#   data/{dev_clean,dev_other,test_clean,test_other}   speech + transcripts (decoded in stage 4)
#   data/train_960                                      transcripts of the 960 h (text only: TASU trains from text)
#   data/lm_text                                        with --lm_text true: librispeech-lm-norm.txt minus dev/test
# A malformed corpus stops with an error naming the file and line (local/data_prep.py).
set -euo pipefail
. ./db.sh
train_sets="train-clean-100 train-clean-360 train-other-500"
speech_sets="dev-clean dev-other test-clean test-other"
train_name=train_960
lm_text=false        # true: also data/lm_text from LIBRISPEECH_LM_TEXT (db.sh)
. utils/parse_options.sh

lm=()
if [ "${lm_text}" = true ]; then
    [ -f "${LIBRISPEECH_LM_TEXT}" ] || { echo "$0: LIBRISPEECH_LM_TEXT (db.sh) is not a file" >&2; exit 1; }
    lm=(--lm_text "${LIBRISPEECH_LM_TEXT}" --heldout_sets ${speech_sets})
fi
# shellcheck disable=SC2086
python3 local/data_prep.py --corpus "${LIBRISPEECH}" --data data --sets ${speech_sets} \
    --train_sets ${train_sets} --train_name "${train_name}" "${lm[@]}"
