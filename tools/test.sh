#!/usr/bin/env bash
# Install what is missing, then run the whole test suite (unit tests + the tiny end-to-end recipe).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"${top}/tools/install.sh"
cd "${top}"
exec ${PYTHON:-python3} -m pytest test -q "$@"
