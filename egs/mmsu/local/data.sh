#!/usr/bin/env bash
# Stage 0 of mmsu: data/mmsu from MMSU's items (MMSU_ITEMS, MMSU_AUDIO in db.sh): wav.scp, the
# prompt fields (question, choice_a..choice_d), answer (A-D), task_name and category.
# A malformed item stops with an error naming the file and line (local/data_prep.py).
set -euo pipefail
. ./db.sh
. utils/parse_options.sh

python3 local/data_prep.py --items "${MMSU_ITEMS}" --audio_root "${MMSU_AUDIO}" --data data --name mmsu
