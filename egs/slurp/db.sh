# Where the corpora are (as ESPnet's db.sh): edit for your machine.
# SLURP: a clone of github.com/pswietojanski/slurp (dataset/slurp/*.jsonl) ...
SLURP=${SLURP:-downloads/slurp}
# ... and its audio as scripts/download_audio.sh unpacks it (slurp_real/, slurp_synth/)
SLURP_AUDIO=${SLURP_AUDIO:-${SLURP}/audio}
