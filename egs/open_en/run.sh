#!/usr/bin/env bash
# open_en: text-only TASU on open-vocabulary English text (books, news, reviews, chat, voice
# commands, WordNet, the KJV: 283 k sentences, 51 k words), zero-shot ASR on real speech:
# CMU ARCTIC prompts read by one US speaker (arctic_dev, arctic_test) and Asterisk telephone
# prompts (asterisk, 8 kHz), with pocketsphinx decoded and scored beside it on the same audio.
# ./run.sh                                   # stages 0-6 (about 60 min on 2 CPU cores)
# ./run.sh --stage 4 --stop_stage 5 --inference_tag rescore --decode_config conf/decode_rescore.yaml
set -euo pipefail

train_set=train          # text only (local/text/train.text.xz)
valid_set=dev            # text only, for the dev loss
test_sets="arctic_dev arctic_test asterisk"   # arctic_dev: for choosing settings
train_config=conf/train.yaml
decode_config=conf/decode.yaml

./tasu.sh --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
    --train_config "${train_config}" --decode_config "${decode_config}" \
    --lexicon_seed local/text/lexicon.txt.xz --peer pocketsphinx "$@"
