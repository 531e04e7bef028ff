#!/usr/bin/env bash
# Decode one set's dumped posteriors with a model and score it, U-WER/B-WER included (the biasing
# protocol's rare words, data/<set>/bias_ref_rare from tasu.bin.make_bias_lists): the measurement
# step of the adaptation and hotword tables in RESULTS.md (local/RESULTS.notes.md lists the calls).
#   local/decode_score.sh <model dir> <set> <outdir> [tasu.bin.decode options, e.g. --hotwords FILE]
set -euo pipefail
model=$1 set=$2 out=$3; shift 3
config=${DECODE_CONFIG:-conf/decode_expand.yaml}
lexicon=${LEXICON:-dump/lexicon.txt}
if [ ! -f "${out}/text" ]; then
    python3 -m tasu.bin.decode --expdir "${model}" --feats "dump/${set}/feats.scp" --config "${config}" \
        --lexicon "${lexicon}" --outdir "${out}" "$@" > "${out}.log" 2>&1 || { tail -20 "${out}.log"; exit 1; }
fi
bias=()
[ -f "data/${set}/bias_ref_rare" ] && bias=(--bias_lists "data/${set}/bias_ref_rare")
python3 -m tasu.bin.score --ref "data/${set}/text" --hyp "${out}/text" --out "${out}/result.txt" \
    --set-name "${set}" "${bias[@]}" | tail -1
python3 -c "import json,sys; print('  %.1f s' % json.load(open(sys.argv[1]))['seconds'])" "${out}/decode_stats.json"
