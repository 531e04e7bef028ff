#!/usr/bin/env bash
# Stage 0 of mini_en: data/train (text only), data/{dev,test_in,test_ood} (text + espeak-ng speech)
# and data/train_paired (speech of training sentences, other voices; stage 3); data/slu_{train,test}
# and data/train_mt (voice-assistant requests with intent labels; local/prepare_slu.py).
# Needs Debian's wordnet-base, bible-kjv, espeak-ng, flite and sox (tools/install.sh installs them).
set -euo pipefail
config=conf/data.yaml
n_train=0   # cap the training sentences (0: all); the CI test uses a small number
n_dev=0     # cap the dev sentences (0: as in the config)
n_test=0    # cap the test utterances per set (0: as in the config)
n_paired=0  # cap the paired (speech + text) training utterances (0: as in the config)
n_slu=0     # cap the SLU training requests (0: as in conf/slu.yaml); n_test caps its test set
. utils/parse_options.sh

for cmd in espeak-ng flite sox bible; do
    command -v ${cmd} >/dev/null || { echo "$0: ${cmd} not found; run tools/install.sh" >&2; exit 1; }
done
python3 local/prepare_data.py --config "${config}" --data data --wav_dir data/wav \
    --n_train "${n_train}" --n_dev "${n_dev}" --n_test "${n_test}" --n_paired "${n_paired}"
# voice-assistant requests with intents: data/slu_train (text), data/slu_test (speech), data/train_mt
python3 local/prepare_slu.py --config conf/slu.yaml --data_config "${config}" --data data --wav_dir data/wav \
    --n_train "${n_slu}" --n_test "${n_test}"
