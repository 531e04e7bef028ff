#!/usr/bin/env bash
# Install what is missing, lint, then run the whole test suite (unit, CLI and end-to-end recipe tests;
# `tools/test.sh -m unit` runs the fast library tests only: see the markers in pyproject.toml).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"${top}/tools/install.sh"
cd "${top}"
# ESPnet2 (the espnet:<model> encoder's tests) and espnet_model_zoo (our packed zips must load
# there too), with --no-deps, since their declared deps would replace the CPU torch
python=${PYTHON:-python3}
"${top}/tools/install.sh" --espnet >/dev/null \
    || echo "$0: espnet2/espnet_model_zoo not installable; their tests will be skipped"
# the linter first (settings in pyproject.toml): a lint error fails the run like a test does
${python} -m ruff check "${top}"
exec ${python} -m pytest test -q "$@"
