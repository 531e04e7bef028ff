#!/usr/bin/env bash
# Stage 0 of open_en: data/{train,dev} (open-vocabulary text, local/text/), data/{arctic_dev,arctic_test}
# (real read speech, db/arctic_cathy) and data/asterisk (real telephone prompts, Debian packages
# asterisk-core-sounds-en{,-wav}: tools/install.sh installs them). Offline.
# --sets "asterisk_adapt" also splits data/asterisk by prompt family into data/asterisk_adapt_{text,dev,test}
# (adaptation text, dev, test: local/split_asterisk.py); not built by default.
set -euo pipefail
n_train=0                                      # keep the first N training sentences (0: all)
n_test=0                                       # keep the first N utterances of each speech set (0: all)
sets="train dev arctic_dev arctic_test asterisk"
. utils/parse_options.sh
python3 local/prepare_data.py --data data --n_train "${n_train}" --n_test "${n_test}" --sets ${sets}
