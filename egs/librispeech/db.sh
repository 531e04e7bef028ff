# Where the corpora are (as ESPnet's db.sh): edit for your machine.
# LibriSpeech as openslr.org/12 unpacks it: ${LIBRISPEECH}/{train-clean-100,...,test-other}/<spk>/<chapter>/
LIBRISPEECH=${LIBRISPEECH:-downloads/LibriSpeech}
# optional: the normalised LM text of openslr.org/11 (librispeech-lm-norm.txt), more text-only training data
LIBRISPEECH_LM_TEXT=${LIBRISPEECH_LM_TEXT:-}
