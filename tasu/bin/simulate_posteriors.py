#!/usr/bin/env python3
"""Simulated PSD posteriors of a units table, written like a stage-1 dump (diagnostics).

``<out>/feats.ark`` + ``<out>/feats.scp`` hold, per utterance of ``--units`` (the stage-1
``units`` table), the rows the text-only trainer would simulate from those units. With
``--noise_scale 0`` (the default) they are clean one-hot rows: what a perfect encoder would
give. Decoding them (``tasu.bin.decode --feats <out>/feats.scp``) separates the LLM's own
errors from the encoder's: an oracle. ``--noise_scale 1`` gives the training noise.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from tasu.data import DataError, read_kv
from tasu.fileio import atomic_ark_writer
from tasu.units import UnitInventory

log = logging.getLogger("simulate_posteriors")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=Path, required=True, help="units table (stage 1: dump/<set>/units)")
    ap.add_argument("--inventory", type=Path, required=True,
                    help="unit inventory of the model (its exp dir's units.txt)")
    ap.add_argument("--config", type=Path, required=True, help="training YAML whose simulation knobs to use")
    ap.add_argument("--out", type=Path, required=True, help="output dir (gets feats.ark, feats.scp)")
    ap.add_argument("--noise_scale", type=float, default=0.0,
                    help="multiplies every noise rate and the smoothing (0: clean one-hot rows)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")

    from tasu.config import load_config
    from tasu.simulate import PosteriorSimulator

    try:
        table = read_kv(args.units)
        inventory = UnitInventory.from_file(args.inventory)
        cfg = load_config(args.config)
    except (DataError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1
    index = inventory.index()
    lines = {k: n for n, k in enumerate(table, start=1)}
    seqs: dict[str, list[int]] = {}
    for uid, value in table.items():
        unknown = [u for u in value.split() if u not in index]
        if unknown:
            log.error("%s:%d: unit %r is not in %s", args.units, lines[uid], unknown[0], args.inventory)
            return 1
        seqs[uid] = [index[u] for u in value.split()]
    active = sorted({i for s in seqs.values() for i in s})
    sim = PosteriorSimulator(inventory.size, active, inventory.units, inventory.wb_id, cfg.simulation)
    sim.scale = args.noise_scale
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    ark, scp = args.out / "feats.ark", args.out / "feats.scp"
    with atomic_ark_writer(ark, scp) as writer:
        for uid, ids in seqs.items():
            writer(uid, sim(ids, rng).astype(np.float32))
    log.info("%d utterances -> %s (noise scale %g)", len(seqs), scp, args.noise_scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
