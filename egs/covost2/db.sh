# Where the corpora are (as ESPnet's db.sh): edit for your machine.
# Common Voice (English; the CoVoST 2 paper uses release 4): ${COMMONVOICE}/en/clips/*.mp3
COMMONVOICE=${COMMONVOICE:-downloads/commonvoice}
# the output dir of CoVoST 2's get_covost_splits.py: covost_v2.en_<tgt>.{train,dev,test}.tsv
COVOST=${COVOST:-downloads/covost}
