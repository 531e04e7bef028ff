#!/usr/bin/env python3
"""Average the trainable weights of a model's last checkpoints (icefall's ``--avg``, ESPnet's
``average_nbest_models``), into a new exp dir that every stage and tool reads like a trained one.

  python -m tasu.bin.average_checkpoints --expdir exp/tasu_train_hama --avg 3 --out exp/tasu_train_hama_avg3
  python -m tasu.bin.average_checkpoints --expdir exp/tasu_train_hama \\
      --checkpoints exp/tasu_train_hama/checkpoints/step0002400.pt exp/tasu_train_hama/model.pt \\
      --out exp/tasu_train_hama_avg

``--avg N`` takes the N newest ``<expdir>/checkpoints/step*.pt`` (the trainer keeps
``keep_checkpoints`` of them: raise it for the run you mean to average); ``--checkpoints`` names
the weights files (checkpoints or ``model.pt`` files) instead. ``--out`` is a new exp dir
(``config.yaml`` and ``units.txt`` copied from ``--expdir``, ``model.pt`` the mean,
``averaged.txt`` the files it came from), so ``./run.sh --stage 4 --model_tag <its name>`` decodes
it, or a ``.pt`` file (decode it with ``tasu.bin.decode --checkpoint``). Nothing is written
under the final names unless the whole average succeeds.
"""
from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from pathlib import Path

log = logging.getLogger("tasu.average_checkpoints")


def newest_checkpoints(expdir: Path, n: int) -> list[Path]:
    """The ``n`` newest ``checkpoints/step<N>.pt`` of ``expdir``, oldest first; an error if fewer exist."""
    found = sorted((int(m.group(1)), p) for p in (expdir / "checkpoints").glob("step*.pt")
                   if (m := re.fullmatch(r"step(\d+)\.pt", p.name)))
    if len(found) < n:
        raise ValueError(f"{expdir / 'checkpoints'}: {len(found)} checkpoints, --avg {n} needs {n} "
                         "(the trainer keeps keep_checkpoints of them; raise it for the run to average)")
    return [p for _, p in found[-n:]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expdir", type=Path, required=True, help="the training dir (config.yaml, units.txt)")
    ap.add_argument("--avg", type=int, help="average the newest N checkpoints of <expdir>/checkpoints")
    ap.add_argument("--checkpoints", type=Path, nargs="+", help="average these weights files instead")
    ap.add_argument("--out", type=Path, required=True, help="a new exp dir, or a .pt file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    if (args.avg is None) == (args.checkpoints is None):
        ap.error("give one of --avg N and --checkpoints FILE...")
    if args.avg is not None and args.avg < 1:
        ap.error(f"--avg must be at least 1, got {args.avg}")
    import torch

    from tasu.fileio import atomic_torch_save, atomic_write_text
    from tasu.modelio import average_weights
    from tasu.zoo import ZooError, check_model_files

    to_file = args.out.suffix == ".pt"
    out_dir = args.out.parent if to_file else args.out
    if not to_file and out_dir.resolve() == args.expdir.resolve():
        log.error("%s: --out is the training dir itself; give a new dir (its model.pt is the trained model)", args.out)
        return 1
    try:
        files = newest_checkpoints(args.expdir, args.avg) if args.avg is not None else list(args.checkpoints)
        for f in files:
            if not f.is_file():
                raise ValueError(f"{f}: missing")
        state = average_weights(files)
        if not to_file:
            check_model_files(args.expdir / "config.yaml", args.expdir / "units.txt", files[-1])
    except (ValueError, ZooError, OSError) as e:
        log.error("%s", e)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    if to_file:
        atomic_torch_save(state, args.out)
    else:
        for name in ("config.yaml", "units.txt"):
            shutil.copyfile(args.expdir / name, out_dir / f".{name}.tmp")
            (out_dir / f".{name}.tmp").replace(out_dir / name)
        atomic_write_text(out_dir / "averaged.txt",
                          "".join(f"{f.resolve()}\n" for f in files))
        atomic_torch_save(state, out_dir / "model.pt")  # last: its presence marks a finished dir
    n = sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor))
    log.info("averaged %d files (%s) -> %s (%d tensors, %.2fM values)", len(files),
             ", ".join(f.name for f in files), args.out, len(state), n / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
