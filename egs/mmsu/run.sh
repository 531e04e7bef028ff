#!/usr/bin/env bash
# mmsu: MMSU's spoken multiple-choice questions asked of a trained TASU model (zero-shot: MMSU has no
# training split). Each item's question and options go into the prompt (prompt fields), the speech
# is the item's recording; accuracy overall (RESULTS.md) and per category and task
# (local/score_categories.py, appended to RESULTS.md).
#   ./run.sh --model ../librispeech/exp/<model>            # an exp dir, a packed zip or an unpacked dir
#   ./run.sh --model ../../tasu/pretrained/open_en.zip      # the shipped CPU model
# The model is linked as exp/<name>; stage 1 runs the model's own encoder (its config's `encoder:`).
set -euo pipefail

model=""             # the model to ask (required for stages 1-5)
model_tag=""         # its name under exp/ (default: the model file or dir name)
decode_config=conf/decode.yaml
stage=0
stop_stage=5
args=()
while [ $# -gt 0 ]; do  # these are run.sh's; everything else goes to tasu.sh
    case "$1" in
        --model|--model_tag|--decode_config|--stage|--stop_stage)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
            name=${1#--}; printf -v "${name}" '%s' "$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ "${stop_stage}" -ge 1 ]; then
    [ -n "${model}" ] || { echo "$0: give --model <exp dir, packed zip or unpacked dir>" >&2; exit 1; }
    tag=${model_tag:-$(basename "${model%.zip}")}
    # exp/<tag>: links to the model's config, units and weights (packed zips are unpacked once, cached)
    python3 - "${model}" "exp/${tag}" <<'PY' || exit 1
import os, sys
from tasu.zoo import ZooError, unpack
try:
    u = unpack(sys.argv[1])
except (ZooError, OSError, ValueError) as e:
    sys.exit(f"run.sh: --model {sys.argv[1]}: {e}")
os.makedirs(sys.argv[2], exist_ok=True)
for src, name in ((u.train_config, "config.yaml"), (u.units_file, "units.txt"), (u.model_file, "model.pt")):
    dst = os.path.join(sys.argv[2], name)
    if os.path.realpath(dst) != os.path.realpath(src):
        if os.path.lexists(dst):
            os.remove(dst)
        os.symlink(os.path.abspath(src), dst)
PY
    encoder=$(python3 -c "from tasu.config import load_config; print(load_config('exp/${tag}/config.yaml').encoder)")
    args=(--model_tag "${tag}" --encoder "${encoder}" "${args[@]}")
fi
common=(--train_set "" --valid_set "" --test_sets mmsu --decode_config "${decode_config}"
        --tasks_file conf/tasks.yaml --task mmsu)

# stage 0 data, 1 posteriors, 4 decoding, 5 scoring (stages 2, 3 and 6 train and pack: nothing to do here)
for s in 0 1 4 5; do
    if [ "${stage}" -le "${s}" ] && [ "${stop_stage}" -ge "${s}" ]; then
        ./tasu.sh "${common[@]}" --stage "${s}" --stop_stage "${s}" "${args[@]}"
    fi
done
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    out="exp/${tag}/decode_mmsu_mmsu"
    python3 local/score_categories.py --data data/mmsu --hyp "${out}/text" --out "${out}/result_by_category.md" >/dev/null
    { echo; echo "## ${tag}: accuracy by category and task"; echo; cat "${out}/result_by_category.md"; } >> RESULTS.md
fi
