# Where the corpora are (as ESPnet's db.sh): edit for your machine.
# MMSU (huggingface.co/datasets/ddwang2000/MMSU): the item file (JSON list or JSON lines) and the
# dir its audio_path values are relative to
MMSU_ITEMS=${MMSU_ITEMS:-downloads/MMSU/mmsu.jsonl}
MMSU_AUDIO=${MMSU_AUDIO:-$(dirname "${MMSU_ITEMS}")}
