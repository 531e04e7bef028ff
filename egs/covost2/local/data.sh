#!/usr/bin/env bash
# Stage 0 of covost2: Kaldi data dirs of one English -> <tgt> pair (COVOST, COMMONVOICE in db.sh).
#   data/train_en_<t>        text only: transcripts + translations of train, minus dev/test sentences
#   data/{dev,test}_en_<t>   the Common Voice clips, with text and translation
# (<t>: de, or zh for zh-CN). A malformed release stops with an error naming the file and line.
set -euo pipefail
. ./db.sh
tgt=zh-CN
. utils/parse_options.sh

python3 local/data_prep.py --covost "${COVOST}" --clips "${COMMONVOICE}/en/clips" --tgt "${tgt}" --data data
