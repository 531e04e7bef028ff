"""Parallel jobs as Kaldi's run.pl / slurm.pl run them (utils/run_jobs.sh), and stage 1's posterior
dump split into jobs and merged (tasu.bin.dump_posteriors --job J/N, --merge N) giving what the
in-process --nj gives. Slurm itself is not on these machines: a stand-in sbatch on PATH runs the
array's tasks as Slurm would, so the submission (array, log names, options) is checked up to
the cluster boundary."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
RUN_JOBS = TOP / "utils" / "run_jobs.sh"

FAKE_SBATCH = r"""#!/usr/bin/env bash
# a stand-in for Slurm's sbatch --wait --array=1-N --output=<pattern with %a> [opts] script
echo "$@" > "$(dirname "$0")/sbatch.args"
for a in "$@"; do
    case "$a" in --array=1-*) n=${a#--array=1-} ;; --output=*) out=${a#--output=} ;; esac
    script=$a
done
rc=0
for j in $(seq 1 "$n"); do SLURM_ARRAY_TASK_ID=$j bash "$script" > "${out//%a/$j}" 2>&1 || rc=1; done
exit $rc
"""


def run_jobs(tmp_path, *args, env=None):
    return subprocess.run([str(RUN_JOBS), *map(str, args)], cwd=tmp_path, capture_output=True, text=True,
                          env=env or dict(os.environ))


@pytest.mark.unit
def test_local_jobs_substitute_job_and_name_failed_logs(tmp_path):
    r = run_jobs(tmp_path, "JOB=1:3", "logs/t.JOB.log", "bash", "-c", "echo part JOB of 3 > out.JOB; [ JOB != 2 ]")
    assert r.returncode == 1 and "1 of 3 jobs failed; see logs/t.2.log" in r.stderr
    assert [(tmp_path / f"out.{j}").read_text() for j in (1, 2, 3)] == [f"part {j} of 3\n" for j in (1, 2, 3)]
    r = run_jobs(tmp_path, "JOB=1:2", "logs/ok.JOB.log", "true")
    assert r.returncode == 0 and (tmp_path / "logs" / "ok.2.log").is_file()
    for bad, says in ((["JOB=2:3", "l.JOB", "true"], "Usage"), (["JOB=1:2", "l.log", "true"], "must hold JOB"),
                      (["--backend", "sge", "JOB=1:1", "l.JOB", "true"], "unknown backend sge")):
        r = run_jobs(tmp_path, *bad)
        assert r.returncode == 1 and says in r.stderr


@pytest.mark.unit
def test_slurm_jobs_are_one_array_job(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(stat.S_IRWXU)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    r = run_jobs(tmp_path, "--backend", "slurm", "--slurm_opts", "--partition cpu --mem 4G", "JOB=1:3",
                 "logs/post.JOB.log", "bash", "-c", "echo job JOB > out.JOB; [ JOB != 3 ]", env=env)
    assert r.returncode == 1 and "1 of 3 jobs failed; see logs/post.3.log" in r.stderr
    args = (bin_dir / "sbatch.args").read_text()
    assert "--wait --array=1-3 --output=logs/post.%a.log" in args and "--partition cpu --mem 4G" in args
    assert (tmp_path / "out.2").read_text() == "job 2\n"
    assert (tmp_path / "logs" / "post.1.log").read_text().splitlines()[-1] == "# exit 0"
    r = run_jobs(tmp_path, "--backend", "slurm", "JOB=1:1", "l.JOB", "true", env={**env, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "sbatch is not on PATH" in r.stderr


def test_dump_jobs_then_merge_equal_the_in_process_dump(tmp_path):
    from tiny_hf import UPPER, tiny_ctc_dir

    from tasu.data import read_posteriors, write_data_dir

    ctc = tiny_ctc_dir(tmp_path / "ctc", "wav2vec2", UPPER)
    flacs = sorted((TOP / "test" / "fixtures" / "LibriSpeech").rglob("*.flac"))[:3]
    d = tmp_path / "data"
    write_data_dir(d, wav_scp={f.stem: str(f) for f in flacs})
    base = [sys.executable, "-m", "tasu.bin.dump_posteriors", "--data", str(d), "--encoder", f"hf:{ctc}",
            "--topk", "4"]
    r = subprocess.run([*base, "--out", str(tmp_path / "one"), "--nj", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # the same through the job launcher: 2 jobs, then the merge
    r = run_jobs(tmp_path, "JOB=1:2", "logs/dump.JOB.log", *base, "--out", tmp_path / "jobs", "--job", "JOB/2")
    assert r.returncode == 0, r.stderr + (tmp_path / "logs" / "dump.1.log").read_text()
    r = subprocess.run([*base, "--out", str(tmp_path / "jobs"), "--merge", "3"], capture_output=True, text=True)
    assert r.returncode == 1 and "job.3.json: missing: job 3 of 3 did not finish" in r.stderr
    r = subprocess.run([*base, "--out", str(tmp_path / "jobs"), "--merge", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("psd_stats", "units_hyp", "skipped", "feats.info"):
        assert (tmp_path / "jobs" / name).read_text() == (tmp_path / "one" / name).read_text(), name
    a, b = read_posteriors(tmp_path / "one" / "feats.scp"), read_posteriors(tmp_path / "jobs" / "feats.scp")
    assert a.keys() == b.keys() and len(a) == 3
    assert all((a[u].packed == b[u].packed).all() for u in a)
    assert not list((tmp_path / "jobs").glob("job.*.json")) and not list((tmp_path / "jobs").glob("feats.*.scp"))
