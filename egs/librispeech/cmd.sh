# How stage 1's parallel jobs run (as ESPnet's cmd.sh): processes of this machine, or one Slurm
# array job per data dir (utils/run_jobs.sh). run.sh options (--cmd_backend, --slurm_opts) override.
cmd_backend=local      # local | slurm
slurm_opts=""          # sbatch options for slurm, e.g. "--partition gpu --gres gpu:1 --time 2:00:00 --mem 16G"
