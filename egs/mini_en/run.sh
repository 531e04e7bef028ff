#!/usr/bin/env bash
# mini_en: text-only TASU on English WordNet sentences, zero-shot ASR on espeak-ng speech.
# ./run.sh                          # stages 0-6 (about 45 min on 2 CPU cores)
# ./run.sh --stage 1 --stop_stage 5 --test_sets mine   # decode + score data/mine
set -euo pipefail

train_set=train
valid_set=dev
test_sets="dev test_in test_ood test_in_flite"   # dev: espeak-ng speech of the dev text, for choosing settings;
                                                 # test_in_flite: test_in in flite voices (diagnostic)
train_config=conf/train.yaml
decode_config=conf/decode.yaml

./tasu.sh --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
    --train_config "${train_config}" --decode_config "${decode_config}" "$@"
