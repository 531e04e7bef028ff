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
# what the run depends on (CPU and its bf16 flags, versions, the precision amp: auto picks), so that a
# red run on another machine can be read; TASU_CPU_BF16=0 tools/test.sh runs the float32 path of an
# AVX2-only CPU on any machine
echo "$0: $(date -u '+%Y-%m-%dT%H:%M:%SZ'), git $(git -C "${top}" rev-parse --short HEAD 2>/dev/null || echo '?')"
${python} -m tasu.runtime | sed "s|^|$0: |"
# the linter first (settings in pyproject.toml): a lint error fails the run like a test does
${python} -m ruff check "${top}"
exec ${python} -m pytest test -q "$@"
