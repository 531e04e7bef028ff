#!/usr/bin/env bash
# Install what is missing, then run the whole test suite (unit tests + the tiny end-to-end recipe).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"${top}/tools/install.sh"
cd "${top}"
# ESPnet's unpacker and espnet_model_zoo, to test that our packed zips load there too; with
# --no-deps, since their declared deps would replace the CPU torch
python=${PYTHON:-python3}
${python} -c "import espnet2.main_funcs.pack_funcs, espnet_model_zoo.downloader" 2>/dev/null || {
    ${python} -m pip install --no-deps espnet espnet_model_zoo && ${python} -m pip install pandas filelock; } \
    || echo "$0: espnet_model_zoo not installable; its compatibility test will be skipped"
exec ${python} -m pytest test -q "$@"
