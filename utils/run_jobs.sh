#!/usr/bin/env bash
# Run a command as N parallel jobs, as Kaldi's and ESPnet's run.pl / slurm.pl do:
#   utils/run_jobs.sh [--backend local|slurm] [--slurm_opts "..."] JOB=1:N <log with JOB> <command with JOB>...
# Every "JOB" in the log name and the command becomes the job's number. local runs the jobs as
# background processes of this machine; slurm submits one array job (sbatch --array=1-N --wait)
# and waits for it. Exit status: 0 when every job succeeded; otherwise 1, naming the failed
# jobs' logs. The backend and its options usually come from the recipe's cmd.sh.
set -euo pipefail

backend=local
slurm_opts=""
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend=$2; shift 2 ;;
        --slurm_opts) slurm_opts=$2; shift 2 ;;
        *) break ;;
    esac
done
if [ $# -lt 3 ] || ! [[ "$1" =~ ^JOB=1:([0-9]+)$ ]]; then
    echo "Usage: $0 [--backend local|slurm] [--slurm_opts \"...\"] JOB=1:N <log with JOB> <command with JOB>..." >&2
    exit 1
fi
n=${BASH_REMATCH[1]}
logpat=$2
shift 2
if [ "${n}" -lt 1 ]; then echo "$0: JOB=1:${n}: need at least one job" >&2; exit 1; fi
case "${logpat}" in *JOB*) ;; *) echo "$0: the log name ${logpat} must hold JOB" >&2; exit 1 ;; esac
mkdir -p "$(dirname "${logpat}")"
# the command, quoted for bash -c, with JOB replaced by the job's number ($1 of the inner shell)
quoted=""
for a in "$@"; do quoted+=" $(printf '%q' "${a}")"; done
quoted=${quoted//JOB/\$\{job\}}

case "${backend}" in
    local)
        pids=()
        for j in $(seq 1 "${n}"); do
            log=${logpat//JOB/${j}}
            ( job=${j}; { echo "# ${quoted# } (job ${j} of ${n}, $(date))"; eval "${quoted}"; } > "${log}" 2>&1 ) &
            pids+=($!)
        done
        failed=()
        for j in $(seq 1 "${n}"); do
            wait "${pids[$((j - 1))]}" || failed+=("${logpat//JOB/${j}}")
        done
        ;;
    slurm)
        command -v sbatch >/dev/null || { echo "$0: --backend slurm, but sbatch is not on PATH" >&2; exit 1; }
        script=$(mktemp "${TMPDIR:-/tmp}/run_jobs.XXXXXX.sh")
        trap 'rm -f "${script}"' EXIT
        {
            echo "#!/usr/bin/env bash"
            echo "cd $(printf '%q' "$(pwd)")"
            echo "job=\${SLURM_ARRAY_TASK_ID:?not a Slurm array task}"
            echo "echo \"# ${quoted# } (job \${job} of ${n}, \$(date))\""
            echo "( ${quoted# } )"
            echo 'rc=$?; echo "# exit ${rc}"; exit ${rc}'
        } > "${script}"
        # shellcheck disable=SC2086
        sbatch --wait --array="1-${n}" --output="${logpat//JOB/%a}" --job-name="$(basename "${logpat%%.*}")" \
            ${slurm_opts} "${script}" >/dev/null || true
        failed=()
        for j in $(seq 1 "${n}"); do  # a job's status is the log's last line, written by the job itself
            log=${logpat//JOB/${j}}
            [ -f "${log}" ] && grep -q "^# exit 0$" <(tail -n 1 "${log}") || failed+=("${log}")
        done
        ;;
    *) echo "$0: unknown backend ${backend} (local or slurm)" >&2; exit 1 ;;
esac
if [ ${#failed[@]} -gt 0 ]; then
    echo "$0: ${#failed[@]} of ${n} jobs failed; see ${failed[*]}" >&2
    exit 1
fi
