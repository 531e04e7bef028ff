#!/usr/bin/env bash
# Stage 0 of slurp: Kaldi data dirs from SLURP's release (SLURP, SLURP_AUDIO in db.sh).
#   data/train          text only: the sentences of train (+ train_synthetic), minus devel/test sentences
#   data/{devel,test}   one utterance per recording of slurp_real
# each with text, scenario, action and intent; data/{scenarios,actions,intents}.txt the label sets.
# A malformed release stops with an error naming the file and line (local/data_prep.py).
set -euo pipefail
. ./db.sh
synthetic=true       # false: leave train_synthetic.jsonl's sentences out of the training text
test_sets="devel test"
. utils/parse_options.sh

# shellcheck disable=SC2086
python3 local/data_prep.py --slurp "${SLURP}" --audio "${SLURP_AUDIO}" --data data \
    --synthetic "${synthetic}" --test_sets ${test_sets}
