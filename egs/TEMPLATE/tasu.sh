#!/usr/bin/env bash
# The shared TASU stage script. A recipe's run.sh sets its corpus choices and calls this
# with options; every variable below can be overridden as --name value.
#   0 data prep (local/data.sh)      1 units (text) and PSD posteriors (audio)
#   2 text-only alignment            3 paired fine-tuning (with --paired_set) and/or
#                                      text-only adaptation to a domain (with --adapt_text/--adapt_words)
#   4 decoding                       5 scoring + RESULTS.md
#   6 packing (ESPnet model-zoo zip)
set -euo pipefail

cmdline="$0 $*"
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (tasu.sh:${BASH_LINENO[0]}) $*" >&2; }

stage=0               # first stage to run
stop_stage=10000      # last stage to run (as in ESPnet: all of them)
nj=2                  # parallel jobs for posterior dumping
cmd_backend=local     # how those jobs run: local (processes here) or slurm (an array job; utils/run_jobs.sh)
slurm_opts=""         # sbatch options of the slurm backend, e.g. "--partition gpu --gres gpu:1 --mem 16G"
posterior_topk=0      # stage 1: store each PSD row's K most probable units (0: dense; e.g. 16 for 25 055 BPE units)
ngpu=0                # 0: CPU; >0: CUDA (stage 2 trains data-parallel on this many devices)
train_nproc=""        # stage 2: data-parallel processes (torchrun; default: ngpu, or 1 on CPU)
python=python3
train_set=train       # text-only training data dir (needs `text`)
valid_set=dev         # text-only validation data dir
test_sets="test"      # data dirs to decode (need `wav.scp`; `text` to be scored)
encoder=hama          # CTC encoder: hama, or hf:<dir or hub id> (a transformers *ForCTC model)
train_config=conf/train.yaml
paired_set=""         # stage 3: data dir of paired audio + text ("": no stage 3; decode the stage-2 model)
finetune_config=conf/finetune.yaml
finetune_init=""      # stage 3 starts from: "" the stage-2 model (curriculum), "none" scratch, or a model path
finetune_tag=""       # stage 3 exp: <stage-2 exp>_<tag> (default: the finetune config's name, + _scratch)
adapt_text=""         # stage 3: a domain's text (one sentence a line): tasu-adapt continues the model on it,
                      #   mixed with a replay sample of ${train_set}'s text ("": no text-only adaptation)
adapt_words=""        # stage 3: words or phrases for tasu-adapt to learn (one a line; with or without adapt_text)
adapt_tag=""          # stage 3: the adapted model's exp: <model exp>_<tag> (default: adapt_<file name>)
adapt_args=""         # stage 3: more tasu-adapt options, e.g. "--steps 200 --replay_ratio 3"
replay_n=20000        # stages 3 and 6: sentences of ${train_set}'s text in the replay sample (0: none packed)
decode_config=conf/decode.yaml
train_args=""         # extra training options, e.g. "--override optim.max_steps=20"
local_data_opts=""    # options passed to local/data.sh
expdir=exp            # experiments root
dumpdir=""            # units, posteriors, lexicon (default: dump; dump_<encoder tag> for encoders other than hama)
model_tag=""          # exp name (default: from the train config's file name)
skip_bad_audio=false  # stage 1: stop on unreadable audio (false) or skip and count it (true)
pack_dtype=float16    # stage 6: precision of the packed projector + LoRA weights
pack_args=""          # stage 6: more options of tasu.bin.pack, e.g. "--include_llm"
inference_tag=""      # stages 4-5: decode into decode_<set>_<tag> (to compare decoding settings)
decode_args=""        # stage 4: extra options of tasu.bin.decode, e.g. "--vocabulary data/vocab.txt"
task=""               # stages 4-5: ask this registry task (e.g. intent) and score by its metric ("": transcribe)
tasks_file=conf/tasks.yaml  # the task registry (tasu.tasks)
cascade_from=""       # stage 4: read <this exp>/decode_<set>/text (its ASR output) instead of the speech
lexicon_seed=""       # stage 1: start <dumpdir>/lexicon.txt from this file (.xz ok) when it does not exist yet
                      #   (a recipe that ships the G2P of its training text saves that much G2P time)
g2p_nj=2              # stage 1: G2P worker processes for words new to the lexicon
oracle=false          # stage 4: decode clean one-hot rows of the test transcripts' G2P units (a perfect
                      #   encoder: the LLM's own share of the errors) into decode_<set>_oracle
peer=""               # stages 4-5: also decode and score the test sets with this peer system
                      #   (tasu.bin.peer_decode: pocketsphinx) into <expdir>/<peer>/decode_<set>

help_message="Usage: $0 [options]
  --stage N --stop_stage M   run stages N..M (0 data, 1 units/posteriors, 2 text-only
                             alignment, 3 paired fine-tuning / domain adaptation, 4 decoding, 5 scoring, 6 packing)
  --nj, --cmd_backend local|slurm, --slurm_opts, --posterior_topk, --ngpu, --train_nproc, --train_set, --valid_set, --test_sets \"a b\", --train_config, --decode_config,
  --paired_set, --finetune_config, --finetune_init, --finetune_tag,
  --adapt_text, --adapt_words, --adapt_tag, --adapt_args, --replay_n,
  --train_args, --local_data_opts, --expdir, --dumpdir, --model_tag, --encoder, --skip_bad_audio,
  --inference_tag, --decode_args, --task, --tasks_file, --cascade_from, --pack_dtype, --pack_args,
  --lexicon_seed, --g2p_nj, --oracle true|false, --peer"

[ ! -f cmd.sh ] || . ./cmd.sh  # the recipe's job backend (as ESPnet's cmd.sh); options below override it
. utils/parse_options.sh

# hama -> hama, hf:/models/wav2vec2-base-960h/ -> hf_wav2vec2-base-960h (names of exp and dump dirs)
encoder_tag=${encoder%%:*}
[ "${encoder_tag}" = "${encoder}" ] || encoder_tag+="_$(basename "${encoder#*:}")"
[ -n "${dumpdir}" ] || dumpdir=$([ "${encoder}" = hama ] && echo dump || echo "dump_${encoder_tag}")
[ -n "${model_tag}" ] || model_tag="tasu_$(basename "${train_config}" .yaml)_${encoder_tag}"
exp="${expdir}/${model_tag}"
if [ "${oracle}" = true ] && [ -z "${inference_tag}" ]; then inference_tag=oracle; fi
if [ -n "${task}" ]; then  # a task's answers go into decode_<set>_<task> unless tagged otherwise
    [ -n "${inference_tag}" ] || inference_tag=${task}
    decode_args+=" --task ${task} --tasks_file ${tasks_file}"
fi
# the model that stages 4-6 use: the stage-3 model when there is a paired set
if [ -n "${paired_set}" ]; then
    if [ -z "${finetune_tag}" ]; then
        finetune_tag=$(basename "${finetune_config}" .yaml)
        [ "${finetune_init}" != none ] || finetune_tag+=_scratch
    fi
    model_exp="${exp}_${finetune_tag}"
else
    model_exp="${exp}"
fi
# ... and the adapted one when there is a domain text or word list (after the paired step, if any)
adapt_from=${model_exp}
if [ -n "${adapt_text}${adapt_words}" ]; then
    if [ -z "${adapt_tag}" ]; then
        adapt_tag=$(basename "${adapt_text:-${adapt_words}}"); adapt_tag=adapt_${adapt_tag%%.*}
    fi
    model_exp="${adapt_from}_${adapt_tag}"
fi
decode_dir() { echo "${exp}/decode_$1${inference_tag:+_${inference_tag}}"; }

mkdir -p "${exp}/logs"

# run_log LOG CMD...: run CMD, keep its output in LOG, show it, fail loudly with the log name.
run_log() {
    local logf=$1; shift
    log "$* (log: ${logf})"
    if ! "$@" > >(tee "${logf}") 2>&1; then
        log "FAILED: see ${logf}"; exit 1
    fi
}
# train_launcher: "python -m", or torchrun for N > 1 data-parallel processes (gloo on CPU, NCCL
# on GPUs; the global batch stays optim.batch_size); N is --train_nproc, else --ngpu, else 1
train_launcher() {
    local n=${train_nproc:-$(( ngpu > 0 ? ngpu : 1 ))}
    if [ "${n}" -le 1 ]; then echo "${python} -m"
    else echo "${python} -m torch.distributed.run --standalone --nproc_per_node ${n} -m"; fi
}
newer() { [ -e "$1" ] && [ -z "$(find "${@:2}" -newer "$1" 2>/dev/null)" ]; }  # $1 newer than the rest

if [ ${stage} -le 0 ] && [ ${stop_stage} -ge 0 ]; then
    log "Stage 0: data preparation"
    run_log "${exp}/logs/data.log" local/data.sh ${local_data_opts}
    for d in ${train_set} ${valid_set} ${test_sets}; do
        ${python} -m tasu.bin.validate_data_dir --no-audio-check "data/${d}"
    done
fi

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "Stage 1: text -> ${encoder} units; audio -> PSD posteriors"
    mkdir -p "${dumpdir}"
    if [ -n "${lexicon_seed}" ] && [ ! -f "${dumpdir}/lexicon.txt" ]; then
        log "  ${dumpdir}/lexicon.txt from ${lexicon_seed}"
        case "${lexicon_seed}" in
            *.xz) xz -dc "${lexicon_seed}" > "${dumpdir}/.lexicon.txt.tmp" ;;
            *) cp "${lexicon_seed}" "${dumpdir}/.lexicon.txt.tmp" ;;
        esac
        mv "${dumpdir}/.lexicon.txt.tmp" "${dumpdir}/lexicon.txt"
    fi
    for d in ${train_set} ${valid_set}; do
        if newer "${dumpdir}/${d}/units" "data/${d}/text"; then
            log "  ${dumpdir}/${d}/units is up to date, skipping"; continue
        fi
        run_log "${exp}/logs/units_${d}.log" ${python} -m tasu.bin.make_units --encoder "${encoder}" \
            --data "data/${d}" --out "${dumpdir}/${d}" --lexicon "${dumpdir}/lexicon.txt" --nj "${g2p_nj}"
    done
    for d in ${test_sets} ${paired_set}; do
        # up to date: newer than the audio list, and stored as asked (dense or top-k, feats.info)
        stored_k=$(grep -o '"k": [0-9]*' "${dumpdir}/${d}/feats.info" 2>/dev/null | grep -o '[0-9]*$' || echo 0)
        if newer "${dumpdir}/${d}/feats.scp" "data/${d}/wav.scp" && [ -f "${dumpdir}/${d}/units_hyp" ] \
                && [ "${stored_k}" = "${posterior_topk}" ]; then
            log "  ${dumpdir}/${d}/feats.scp is up to date, skipping"; continue
        fi
        dump_opts=(--encoder "${encoder}" --data "data/${d}" --out "${dumpdir}/${d}" --config "${decode_config}"
                   --ngpu "${ngpu}" --topk "${posterior_topk}" --skip_bad_audio "${skip_bad_audio}")
        if [ "${cmd_backend}" = local ]; then  # nj processes of this machine
            run_log "${exp}/logs/posteriors_${d}.log" ${python} -m tasu.bin.dump_posteriors "${dump_opts[@]}" --nj "${nj}"
        else  # nj jobs of the backend (one part of the data dir each), then one merge
            log "  ${nj} ${cmd_backend} jobs: ${exp}/logs/posteriors_${d}.JOB.log"
            utils/run_jobs.sh --backend "${cmd_backend}" --slurm_opts "${slurm_opts}" JOB=1:"${nj}" \
                "${exp}/logs/posteriors_${d}.JOB.log" ${python} -m tasu.bin.dump_posteriors "${dump_opts[@]}" \
                --job "JOB/${nj}" || { log "FAILED: stage 1 posteriors of ${d}"; exit 1; }
            run_log "${exp}/logs/posteriors_${d}.log" ${python} -m tasu.bin.dump_posteriors "${dump_opts[@]}" \
                --merge "${nj}"
        fi
    done
    # G2P units of the test transcripts, to score the encoder's own unit error rate (stage 5);
    # with a lexicon of their own, so that test words never reach the training lexicon
    for d in ${test_sets}; do
        [ -f "data/${d}/text" ] || continue
        if newer "${dumpdir}/${d}/units" "data/${d}/text"; then continue; fi
        [ -f "${dumpdir}/lexicon_eval.txt" ] || cp "${dumpdir}/lexicon.txt" "${dumpdir}/lexicon_eval.txt" 2>/dev/null || true
        run_log "${exp}/logs/units_${d}.log" ${python} -m tasu.bin.make_units --encoder "${encoder}" \
            --data "data/${d}" --out "${dumpdir}/${d}" --lexicon "${dumpdir}/lexicon_eval.txt"
    done
    # the encoder's unit confusions on the validation speech, when it is also a test set
    # (for simulation.confusions; training on them uses those transcribed utterances)
    d=${valid_set}
    if [ -f "${dumpdir}/${d}/units" ] && [ -f "${dumpdir}/${d}/units_hyp" ]; then
        run_log "${exp}/logs/confusions_${d}.log" ${python} -m tasu.bin.estimate_confusions \
            --ref "${dumpdir}/${d}/units" --hyp "${dumpdir}/${d}/units_hyp" --out "${dumpdir}/${d}/confusions.txt"
    fi
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "Stage 2: text-only alignment -> ${exp}"
    if [ -f "${exp}/model.pt" ]; then
        log "  ${exp}/model.pt exists, skipping (remove it to retrain; an interrupted run resumes)"
    else
        echo "${cmdline}" > "${exp}/run.cmd"  # what trained this model, for RESULTS.md
        launcher=$(train_launcher)
        # shellcheck disable=SC2086
        run_log "${exp}/logs/train.log" ${launcher} tasu.bin.train --config "${train_config}" \
            --train_data "data/${train_set}" --train_units "${dumpdir}/${train_set}/units" \
            --dev_data "data/${valid_set}" --dev_units "${dumpdir}/${valid_set}/units" \
            --lexicon "${dumpdir}/lexicon.txt" --encoder "${encoder}" --expdir "${exp}" --ngpu "${ngpu}" ${train_args}
    fi
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    if [ -z "${paired_set}" ]; then
        log "Stage 3: no --paired_set: no paired fine-tuning (stages 4-6 use the text-only model)"
    elif [ -f "${model_exp}/model.pt" ]; then
        log "Stage 3: ${model_exp}/model.pt exists, skipping (remove it to retrain; an interrupted run resumes)"
    else
        init=${finetune_init:-${exp}}
        log "Stage 3: paired fine-tuning on ${paired_set} from ${init} -> ${model_exp}"
        mkdir -p "${model_exp}/logs"
        echo "${cmdline}" > "${model_exp}/run.cmd"
        launcher=$(train_launcher)
        # shellcheck disable=SC2086
        run_log "${model_exp}/logs/train.log" ${launcher} tasu.bin.train --config "${finetune_config}" \
            --train_data "data/${train_set}" --train_units "${dumpdir}/${train_set}/units" \
            --dev_data "data/${valid_set}" --dev_units "${dumpdir}/${valid_set}/units" \
            --paired_data "data/${paired_set}" --paired_feats "${dumpdir}/${paired_set}/feats.scp" \
            --lexicon "${dumpdir}/lexicon.txt" --encoder "${encoder}" --expdir "${model_exp}" --ngpu "${ngpu}" \
            $([ "${init}" = none ] || echo --init "${init}") ${train_args}
    fi
fi
if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ] && [ -n "${adapt_text}${adapt_words}" ]; then
    if [ -f "${model_exp}/model.pt" ]; then
        log "Stage 3: ${model_exp}/model.pt exists, skipping the adaptation (remove it to adapt again)"
    else
        log "Stage 3: text-only adaptation of ${adapt_from} to ${adapt_text}${adapt_words:+ ${adapt_words}} -> ${model_exp}"
        mkdir -p "${model_exp}/logs"
        echo "${cmdline}" > "${model_exp}/run.cmd"
        replay=()  # a sample of the model's training text, mixed into the domain's
        if [ "${replay_n}" -gt 0 ] && [ -f "data/${train_set}/text" ]; then
            if ! newer "${model_exp}/replay.txt.xz" "data/${train_set}/text"; then
                run_log "${model_exp}/logs/replay.log" ${python} -m tasu.bin.make_replay \
                    --text "data/${train_set}/text" --n "${replay_n}" --out "${model_exp}/replay.txt.xz"
            fi
            replay=(--replay_text "${model_exp}/replay.txt.xz")
        else
            replay=(--replay_ratio 0)
        fi
        inputs=()
        [ -z "${adapt_text}" ] || inputs+=(--text "${adapt_text}")
        [ -z "${adapt_words}" ] || inputs+=(--words "${adapt_words}")
        lexicon=()
        [ -f "${adapt_from}/lexicon.txt" ] || [ ! -f "${dumpdir}/lexicon.txt" ] || lexicon=(--lexicon "${dumpdir}/lexicon.txt")
        # shellcheck disable=SC2086
        run_log "${model_exp}/logs/adapt.log" ${python} -m tasu.bin.adapt --model "${adapt_from}" "${inputs[@]}" \
            "${lexicon[@]}" "${replay[@]}" --out "${model_exp}/adapted.zip" --workdir "${model_exp}/adapt_work" ${adapt_args}
        # the adapted model as an exp dir (model.pt last: its presence says the adaptation is complete)
        run_log "${model_exp}/logs/unpack.log" ${python} -m tasu.bin.pack --unpack "${model_exp}/adapted.zip" \
            --out "${model_exp}/adapted"
        for f in config.yaml units.txt lexicon.txt ADAPT.md new_words.txt train.log model.pt; do
            for src in "${model_exp}"/adapted/exp/*/"${f}" "${model_exp}"/adapt_work/exp/*/"${f}"; do
                [ -f "${src}" ] || continue
                cp "${src}" "${model_exp}/.${f}.tmp" && mv "${model_exp}/.${f}.tmp" "${model_exp}/${f}"
                break
            done
        done
    fi
fi
exp=${model_exp}  # stages 4-6 work on the final model

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "Stage 4: decoding ${test_sets}"
    for d in ${test_sets}; do
        out=$(decode_dir "${d}")
        input=(--feats "${dumpdir}/${d}/feats.scp")  # the cascade baseline reads another model's transcripts
        [ -z "${cascade_from}" ] || input=(--text_input "${cascade_from}/decode_${d}/text")
        if [ "${oracle}" = true ]; then  # clean rows of the reference units, as a perfect encoder would give
            odir="${dumpdir}/${d}_oracle"
            if ! newer "${odir}/feats.scp" "${dumpdir}/${d}/units" "${exp}/units.txt"; then
                run_log "${exp}/logs/oracle_${d}.log" ${python} -m tasu.bin.simulate_posteriors \
                    --units "${dumpdir}/${d}/units" --inventory "${exp}/units.txt" --config "${exp}/config.yaml" \
                    --out "${odir}"
            fi
            input=(--feats "${odir}/feats.scp")
        fi
        lexicon=()  # pronunciations for acoustic rescoring of answers (decode config acoustic_weight):
        [ -f "${dumpdir}/lexicon.txt" ] && lexicon=(--lexicon "${dumpdir}/lexicon.txt")
        [ -f "${exp}/lexicon.txt" ] && lexicon=(--lexicon "${exp}/lexicon.txt")  # an adapted model's own
        # the decoding config and the configs it extends (base:): a change to any re-decodes
        confs=$(${python} -m tasu.config "${decode_config}") || { log "cannot read ${decode_config}"; exit 1; }
        mapfile -t decode_confs <<< "${confs}"
        if newer "${out}/text" "${exp}/model.pt" "${input[1]}" "${decode_confs[@]}" \
                && [ "$(cat "${out}/decode_args" 2>/dev/null)" = "${decode_args}" ]; then
            log "  ${out}/text is up to date, skipping"; continue
        fi
        # shellcheck disable=SC2086
        fields=()  # a task's prompt fields ({question}...) come from the set's data dir
        [ -z "${task}" ] || fields=(--data "data/${d}")
        run_log "${exp}/logs/decode_${d}${inference_tag:+_${inference_tag}}.log" ${python} -m tasu.bin.decode \
            --expdir "${exp}" "${input[@]}" "${fields[@]}" "${lexicon[@]}" --config "${decode_config}" \
            --outdir "${out}" --ngpu "${ngpu}" ${decode_args}
        echo "${decode_args}" > "${out}/decode_args"
    done
    if [ -n "${peer}" ]; then  # the peer system on the same audio, scored beside the model in stage 5
        for d in ${test_sets}; do
            out="${expdir}/${peer}/decode_${d}"
            if newer "${out}/text" "data/${d}/wav.scp"; then log "  ${out}/text is up to date, skipping"; continue; fi
            mkdir -p "${expdir}/${peer}/logs"
            run_log "${expdir}/${peer}/logs/decode_${d}.log" ${python} -m tasu.bin.peer_decode --system "${peer}" \
                --data "data/${d}" --out "${out}" --skip_bad_audio "${skip_bad_audio}" --nj "${nj}"
        done
    fi
    if [ -n "${inference_tag}" ] && ! grep -qx "${inference_tag}" "${exp}/inference_tags" 2>/dev/null; then
        echo "${inference_tag}" >> "${exp}/inference_tags"
    fi
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    log "Stage 5: scoring"
    for d in ${test_sets}; do
        out=$(decode_dir "${d}")
        if [ -n "${task}" ]; then  # the task's own answer file and metric
            target=$(${python} -c "from tasu.tasks import load_tasks; print(load_tasks('${tasks_file}').get('${task}').target)")
            if [ ! -f "data/${d}/${target}" ]; then log "  data/${d}/${target} missing: ${d} is decoded, not scored"; continue; fi
            ${python} -m tasu.bin.score --ref "data/${d}/${target}" --hyp "${out}/text" --out "${out}/result.txt" \
                --task "${task}" --tasks "${tasks_file}" --set-name "${d}${inference_tag:+ (${inference_tag})}"
            continue
        fi
        if [ ! -f "data/${d}/text" ]; then log "  data/${d}/text missing: ${d} is decoded, not scored"; continue; fi
        ${python} -m tasu.bin.score --ref "data/${d}/text" --hyp "${out}/text" --out "${out}/result.txt" \
            --set-name "${d}${inference_tag:+ (${inference_tag})}"
        if [ -f "${dumpdir}/${d}/units" ] && [ -f "${dumpdir}/${d}/units_hyp" ]; then  # the encoder alone
            ${python} -m tasu.bin.score --units --ref "${dumpdir}/${d}/units" --hyp "${dumpdir}/${d}/units_hyp" \
                --out "${out}/encoder_result.txt" --json "${out}/encoder_score.json" --set-name "${d}"
        fi
    done
    if [ -z "${task}" ] && [ -f "data/${train_set}/text" ]; then  # errors by the words' training count
        pairs=()
        for d in ${test_sets}; do
            out=$(decode_dir "${d}")
            [ -f "${out}/score.json" ] && pairs+=(--ref "data/${d}/text" --hyp "${out}/text")
        done
        if [ ${#pairs[@]} -gt 0 ]; then
            ${python} -m tasu.bin.errors_by_count --train_text "data/${train_set}/text" "${pairs[@]}" \
                --out "${exp}/errors_by_count${inference_tag:+_${inference_tag}}.md" > /dev/null
            log "  errors by training count: ${exp}/errors_by_count${inference_tag:+_${inference_tag}}.md"
        fi
    fi
    if [ -n "${peer}" ]; then
        for d in ${test_sets}; do
            out="${expdir}/${peer}/decode_${d}"
            [ -f "${out}/text" ] && [ -f "data/${d}/text" ] || continue
            ${python} -m tasu.bin.score --ref "data/${d}/text" --hyp "${out}/text" --out "${out}/result.txt" --set-name "${d}"
        done
        grep -qxF "${expdir}/${peer}" "${expdir}/decoded_models" 2>/dev/null || echo "${expdir}/${peer}" >> "${expdir}/decoded_models"
    fi
    # every decoding of these sets (each inference tag used so far) of every model decoded in
    # this recipe dir (${expdir}/decoded_models: text-only, paired, curriculum...) goes into RESULTS.md;
    # rows already there whose decode dirs are gone (exp/ of another machine) are kept as they are
    grep -qxF "${exp}" "${expdir}/decoded_models" 2>/dev/null || echo "${exp}" >> "${expdir}/decoded_models"
    dirs=()
    while read -r e; do
        for tag in "" $(cat "${e}/inference_tags" 2>/dev/null); do
            for d in ${test_sets}; do
                out="${e}/decode_${d}${tag:+_${tag}}"
                if [ -f "${out}/score.json" ]; then dirs+=("${out}"); fi
            done
        done
        for out in "${e}"/decode_*; do  # other sets scored earlier, by name
            if [ -f "${out}/score.json" ] && [[ " ${dirs[*]} " != *" ${out} "* ]]; then dirs+=("${out}"); fi
        done
    done < "${expdir}/decoded_models"
    if [ ${#dirs[@]} -gt 0 ]; then
        notes="${exp}/RESULTS.notes.md"
        {
            if [ -n "${paired_set}" ]; then
                echo "Model: \`${exp}\` (stage-3 config \`${finetune_config}\` on \`${paired_set}\`, from"
                echo "\`${finetune_init:-the stage-2 model}\`; decoding config \`${decode_config}\`, encoder ${encoder})."
            else
                echo "Model: \`${exp}\` (training config \`${train_config}\`, decoding config \`${decode_config}\`,"
                echo "encoder ${encoder}); text-only training, no paired audio: zero-shot ASR."
            fi
            if [ -n "${adapt_text}${adapt_words}" ]; then
                echo "Adapted from \`${adapt_from}\` by tasu-adapt on \`${adapt_text}${adapt_words:+ ${adapt_words}}\`"
                echo "(its card: \`${exp}/ADAPT.md\`)."
            fi
            echo
            [ -f "${exp}/run.cmd" ] && echo "- trained by: \`$(cat "${exp}/run.cmd")\`"
            echo "- scored by: \`${cmdline}\`"
            echo
            if [ -f "${exp}/train.log" ]; then  # (a model trained elsewhere and linked here has none)
                echo "Training: $(grep -h ' INFO: step [0-9]* loss ' "${exp}/train.log" | tail -n 1 | sed 's/.* INFO: //'); $(grep -h 'dev_loss' "${exp}/train.log" | tail -n 1 | sed 's/.* INFO: //')."
            fi
            [ -f local/RESULTS.notes.md ] && { echo; cat local/RESULTS.notes.md; }
        } > "${notes}"
        ${python} -m tasu.bin.score --results-md RESULTS.md --decode-dirs "${dirs[@]}" \
            --notes-file "${notes}" \
            --title "$(basename "$(pwd)"): TASU results"
        # this run's rows, and the peer's on the same sets (every row and the notes: RESULTS.md)
        log "WER of $(basename "${exp}")${peer:+ and ${peer}} (all models, notes and commands: $(pwd)/RESULTS.md):"
        awk -v m="$(basename "${exp}")" -v p="${peer}" -v sets=" ${test_sets} " '
            /^\| set \|/ { head = $0; getline; head = head "\n" $0; next }   # a table (WER, a task metric)
            /^\| / { split($0, c, " *\\| *"); n = split($0, f, "|"); model = f[n - 2]; gsub(/ /, "", model)
                     set = c[2]; sub(/ \(.*/, "", set)
                     if ((model == m || (p != "" && model == p)) && index(sets, " " set " ")) {
                         if (head != "") { print head; head = "" }
                         print } }' RESULTS.md
    fi
fi
if [ ${stage} -le 6 ] && [ ${stop_stage} -ge 6 ]; then
    packed="${exp}/packed/$(basename "${exp}").zip"
    log "Stage 6: packing ${exp} -> ${packed}"
    files=() extra=()
    [ -f RESULTS.md ] && files+=(RESULTS.md)
    [ -f "${exp}/RESULTS.notes.md" ] && files+=("${exp}/RESULTS.notes.md")
    [ ${#files[@]} -gt 0 ] && extra=(--extra "${files[@]}")
    # the training lexicon: what rescoring and n-best expansion read when decoding from the zip
    if [ -f "${exp}/lexicon.txt" ]; then extra+=(--lexicon "${exp}/lexicon.txt")  # an adapted model's own
    elif [ -f "${dumpdir}/lexicon.txt" ]; then extra+=(--lexicon "${dumpdir}/lexicon.txt"); fi
    # a sample of the training text, for tasu-adapt's replay (an adapted model keeps the one it used)
    if [ "${replay_n}" -gt 0 ] && [ -f "data/${train_set}/text" ] && ! newer "${exp}/replay.txt.xz" "data/${train_set}/text"; then
        run_log "${exp}/logs/replay.log" ${python} -m tasu.bin.make_replay --text "data/${train_set}/text" \
            --n "${replay_n}" --out "${exp}/replay.txt.xz"
    fi
    [ -f "${exp}/replay.txt.xz" ] && extra+=(--replay "${exp}/replay.txt.xz")
    # shellcheck disable=SC2086
    run_log "${exp}/logs/pack.log" ${python} -m tasu.bin.pack --expdir "${exp}" \
        --decode_config "${decode_config}" --dtype "${pack_dtype}" --out "${packed}" ${pack_args} "${extra[@]}"
fi
log "Done (stages ${stage}-$([ ${stop_stage} -ge 6 ] && echo 6 || echo ${stop_stage}))"
