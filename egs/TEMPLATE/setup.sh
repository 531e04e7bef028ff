#!/usr/bin/env bash
# Make a new recipe dir, as ESPnet's egs2/TEMPLATE/asr1/setup.sh does:
#   egs/TEMPLATE/setup.sh egs/<corpus>
# It links the shared stage script and utils/, and writes a starting run.sh, db.sh, cmd.sh,
# local/data.sh (stage 0: yours to write) and conf/ (training and decoding configs that
# extend the default recipe's, so that they hold only what you change).
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "Usage: $0 <new recipe dir>   e.g. $0 egs/my_corpus" >&2
    exit 1
fi
dir=$1
if [ -e "${dir}" ]; then
    echo "$0: ${dir} exists; choose a new dir" >&2
    exit 1
fi
template=$(cd "$(dirname "$0")" && pwd)
mkdir -p "${dir}/conf" "${dir}/local"
top=$(cd "${template}/../.." && pwd)
rel() { python3 -c "import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))" "$1" "$2"; }
ln -s "$(rel "${template}/tasu.sh" "${dir}")" "${dir}/tasu.sh"
ln -s "$(rel "${top}/utils" "${dir}")" "${dir}/utils"
name=$(basename "${dir}")
open_en=$(rel "${top}/egs/open_en/conf" "${dir}/conf")

cp "${top}/egs/open_en/cmd.sh" "${dir}/cmd.sh"
cat > "${dir}/db.sh" <<EOT
# Where the corpora are (as ESPnet's db.sh): edit for your machine.
CORPUS=\${CORPUS:-downloads/${name}}
EOT
cat > "${dir}/run.sh" <<'EOT'
#!/usr/bin/env bash
# <corpus>: what the recipe trains and scores (edit this header).
set -euo pipefail

train_set=train          # text-only training data dir (needs `text`)
valid_set=dev            # text for the dev loss
test_sets="test"         # data dirs with audio to decode and score
train_config=conf/train.yaml
decode_config=conf/decode.yaml

./tasu.sh --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
    --train_config "${train_config}" --decode_config "${decode_config}" "$@"
EOT
cat > "${dir}/local/data.sh" <<'EOT'
#!/usr/bin/env bash
# Stage 0: write Kaldi data dirs under data/ (wav.scp, text, utt2spk; see docs/recipe.md):
# data/train (text only is enough), data/dev, and the test sets of run.sh. Read the corpus
# location from db.sh; stop with an error naming the file and line on a malformed corpus.
set -euo pipefail
. ./db.sh
. utils/parse_options.sh
echo "$0: write the data preparation of this corpus (see egs/librispeech/local/data_prep.py)" >&2
exit 1
EOT
cat > "${dir}/conf/train.yaml" <<EOT
# Text-only training (stage 2): the default recipe's settings; write here only what this corpus changes.
base: ${open_en}/train.yaml
init: null                        # from scratch (open_en continues its shipped model)
EOT
cat > "${dir}/conf/decode.yaml" <<EOT
# Decoding (stage 4): the default recipe's greedy settings; write here only what this corpus changes.
base: ${open_en}/decode.yaml
EOT
chmod +x "${dir}/run.sh" "${dir}/local/data.sh"
echo "made ${dir}: write local/data.sh, set db.sh and the sets in run.sh, then ./run.sh"
