#!/usr/bin/env bash
# The robustness dev suite: a dev set's real recordings under the conditions users meet (speed 0.9
# and 1.1, telephone band, reverberation, babble / pink / brown noise at 10 dB SNR; built by
# tasu.bin.make_conditions, seeded), each scored three ways on the same audio: the encoder's own
# unit error rate (its best path against the G2P units of the transcript), the model's WER, and
# the peer's (pocketsphinx). Settings are chosen on the mean over the clean set and its conditions.
#   local/robustness.sh --model <exp dir, unpacked or packed model> [--tag NAME] [--set arctic_dev]
#       [--babble_from arctic_train] [--conditions "speed0.9 ..."] [--peer pocketsphinx|""]
#       [--decode_config F] [--lexicon F] [--nj 2]
# Outputs: data/<set>_<cond>/, dump/<set>_<cond>/ (units, posteriors, units_hyp, uer.txt),
# exp/robustness/<tag>/<set>[_<cond>]/ (decoding, result.txt), exp/robustness/<peer>/...,
# exp/robustness/<tag>/summary.tsv (one row a condition and their mean). Re-runs skip what is
# complete: a condition whose wav.scp exists, posteriors newer than it, decodings with a text.
set -euo pipefail
model=""
tag=""
set=arctic_dev
babble_from=arctic_train    # other recordings of the same corpus, in neither test split
conditions="speed0.9 speed1.1 telephone reverb babble10 pink10 brown10"
peer=pocketsphinx
decode_config=""            # default: the model's own decode.yaml
lexicon=""                  # the words decoding proposes: default the model's own (training) lexicon
nj=2
. utils/parse_options.sh
[ -n "${model}" ] || { echo "$0: --model is required" >&2; exit 1; }
[ -d "data/${set}" ] || { echo "$0: data/${set} missing (local/data.sh --sets ${set})" >&2; exit 1; }

# a packed zip or a model dir: the dir with config.yaml and the decoding config that goes with it
read -r mdir mdec mlex < <(python3 - "${model}" <<'EOF'
import sys
from tasu.zoo import unpack
u = unpack(sys.argv[1])
print(u.train_config.parent, u.decode_config or "", u.lexicon_file or "")
EOF
)
decode_config=${decode_config:-${mdec}}
[ -n "${decode_config}" ] || { echo "$0: ${model} has no decode.yaml; pass --decode_config" >&2; exit 1; }
tag=${tag:-$(basename "${mdir}")}
lexicon=${lexicon:-${mlex}}
[ -f "${lexicon}" ] || { echo "$0: no lexicon: ${model} has none; pass --lexicon" >&2; exit 1; }
# the transcripts' units (for the encoder's UER) come from a copy, as stage 1's lexicon_eval.txt:
# G2P adds the dev set's words to it, never to the lexicon decoding proposes words from
eval_lexicon=dump/lexicon_robustness.txt
[ -f "${eval_lexicon}" ] || { mkdir -p dump && cp "${lexicon}" "${eval_lexicon}"; }
[ -d "data/${babble_from}" ] || { echo "$0: data/${babble_from} (babble source) missing" >&2; exit 1; }
python3 -m tasu.bin.make_conditions --data "data/${set}" --babble_from "data/${babble_from}" \
    --audio_dir db/conditions --out_root data --conditions ${conditions}

out=exp/robustness
rate() { sed -n 's/.*\(UER\|WER\) \([0-9.]*\) %.*/\2/p' <<< "$1"; }  # the rate of a score line
mkdir -p "${out}/${tag}"
rows=()
for c in clean ${conditions}; do
    d=${set}; [ "${c}" = clean ] || d=${set}_${c}
    [ -f "dump/${d}/units" ] || python3 -m tasu.bin.make_units --data "data/${d}" --out "dump/${d}" --lexicon "${eval_lexicon}"
    if [ ! -f "dump/${d}/feats.scp" ] || [ "data/${d}/wav.scp" -nt "dump/${d}/feats.scp" ]; then
        python3 -m tasu.bin.dump_posteriors --data "data/${d}" --out "dump/${d}" --config "${decode_config}" --nj "${nj}"
    fi
    uer=$(python3 -m tasu.bin.score --units --ref "dump/${d}/units" --hyp "dump/${d}/units_hyp" \
          --out "dump/${d}/uer.txt" --set-name "${d}" | tail -1)
    res=$(DECODE_CONFIG=${decode_config} LEXICON=${lexicon} local/decode_score.sh "${mdir}" "${d}" "${out}/${tag}/${d}")
    res=${res%%$'\n'*}  # its WER line (the next: decoding seconds)
    pres="-"
    if [ -n "${peer}" ]; then
        p=${out}/${peer}/${d}
        if [ ! -f "${p}/text" ]; then
            mkdir -p "${out}/${peer}"
            python3 -m tasu.bin.peer_decode --system "${peer}" --data "data/${d}" --out "${p}" --nj "${nj}" \
                > "${p}.log" 2>&1 || { tail -5 "${p}.log"; exit 1; }
        fi
        pres=$(python3 -m tasu.bin.score --ref "data/${d}/text" --hyp "${p}/text" --out "${p}/result.txt" \
               --set-name "${d}" | tail -1)
    fi
    rows+=("${c}	$(rate "${uer}")	$(rate "${res}")	$(rate "${pres}")")
    echo "${c}: encoder ${uer#*: }; ${tag} ${res#*: }; ${peer:-no peer} ${pres#*: }"
done
{
    printf 'condition\tencoder_UER\t%s_WER\t%s_WER\n' "${tag}" "${peer:-peer}"
    printf '%s\n' "${rows[@]}"
    printf '%s\n' "${rows[@]}" | awk -F'\t' '{for (i = 2; i <= 4; i++) if ($i != "") {s[i] += $i; n[i]++}}
        END {printf "mean"; for (i = 2; i <= 4; i++) printf "\t%s", (n[i] ? sprintf("%.2f", s[i] / n[i]) : "-"); print ""}'
} > "${out}/${tag}/summary.tsv.tmp" && mv "${out}/${tag}/summary.tsv.tmp" "${out}/${tag}/summary.tsv"
column -t -s $'\t' "${out}/${tag}/summary.tsv"
