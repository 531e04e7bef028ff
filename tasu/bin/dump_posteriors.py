#!/usr/bin/env python3
"""Audio -> PSD-compressed CTC posteriors for a data dir (stage 1).

Writes ``<out>/feats.ark`` + ``<out>/feats.scp`` (kaldiio; one ``[T', V]`` float32 matrix of
probabilities per utterance, or with ``--topk K`` each row's K most probable units as a
``[T', 2K]`` matrix, said in ``<out>/feats.info``: see :mod:`tasu.posteriors`),
``<out>/psd_stats`` (frames before/after compression) and ``<out>/units_hyp`` (the encoder's
own best-path units, Kaldi text format: scored against the G2P units of the references, it
tells how well the encoder hears this set).
Rules for bad input: unreadable/corrupt audio stops the run with the ``wav.scp`` line
(``--skip_bad_audio true`` instead skips it); an utterance whose PSD output is empty is
skipped. Every skip is listed with its reason in ``<out>/skipped`` and counted in the log;
skipped utterances are scored as empty hypotheses later, never silently dropped.
The encoder (``--encoder hama`` or ``hf:<dir>``) runs on ``--batch_size`` utterances at a time
(``--ngpu 1``: on CUDA, for torch backends).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tasu.audio import load_audio
from tasu.data import DataDir, DataError
from tasu.fileio import atomic_ark_writer, atomic_write_text

log = logging.getLogger("tasu.dump_posteriors")


def _str2bool(v: str) -> bool:
    if v.lower() in ("true", "1", "yes"):
        return True
    if v.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {v!r}")


def dump(dd: DataDir, uids: list[str], out: Path, encoder: str, threshold: float, skip_bad: bool,
         tag: str = "", batch_size: int = 1, device: str = "cpu",
         topk: int = 0) -> tuple[list[str], list[tuple[str, int, int]], int]:
    """Dump posteriors of ``uids`` to ``out/feats{tag}.{ark,scp}``; returns (skipped, stats, #units).

    The encoder runs on batches of ``batch_size`` utterances (of one sample rate each).
    """
    from tqdm import tqdm

    from tasu.encoders import build_encoder
    from tasu.posteriors import pack_topk
    from tasu.psd import ctc_greedy, psd_compress

    enc = build_encoder(encoder, device=device)
    if topk > enc.inventory.size:
        raise ValueError(f"--topk {topk} is more than the encoder's {enc.inventory.size} units")
    blank = enc.inventory.blank_id
    units = enc.inventory.units
    skipped, stats = [], []
    ark, scp = out / f"feats{tag}.ark", out / f"feats{tag}.scp"
    with atomic_ark_writer(ark, scp) as writer:
        for uid, lp in _encode(enc, dd, uids, batch_size, skip_bad, skipped,
                               tqdm(total=len(uids), desc=f"posteriors{tag}", unit="utt", mininterval=5, disable=None)):
            post = psd_compress(lp, blank, threshold)
            stats.append((uid, lp.shape[0], post.shape[0], " ".join(units[i] for i in ctc_greedy(lp, blank))))
            if post.shape[0] == 0:
                skipped.append(f"{uid} empty PSD output ({lp.shape[0]} frames, all blank above {threshold})")
                continue
            writer(uid, pack_topk(post, topk) if topk else post)
    return skipped, stats, enc.inventory.size


def _encode(enc, dd: DataDir, uids: list[str], batch_size: int, skip_bad: bool, skipped: list[str], bar):
    """``(uid, [T, V] log-posteriors)`` in ``uids`` order, through the encoder's batch API."""
    for start in range(0, len(uids), max(1, batch_size)):
        batch = []
        for uid in uids[start:start + max(1, batch_size)]:
            bar.update(1)
            try:
                wave, sr = load_audio(dd, uid)
            except DataError as e:
                if not skip_bad:
                    raise
                skipped.append(f"{uid} unreadable audio: {e}")
                continue
            batch.append((uid, wave, sr))
        out = {}
        for rate in sorted({sr for _, _, sr in batch}):
            part = [(uid, wave) for uid, wave, sr in batch if sr == rate]
            lp, lengths = enc.log_posteriors_batch([w for _, w in part], rate)
            out.update({uid: lp[b, : int(lengths[b])] for b, (uid, _) in enumerate(part)})
        yield from ((uid, out[uid]) for uid, _, _ in batch)
    bar.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Kaldi data dir with wav.scp")
    ap.add_argument("--out", type=Path, required=True, help="output dump dir")
    ap.add_argument("--encoder", default="hama", help="CTC encoder: hama (default), hf:<dir or hub id>")
    ap.add_argument("--batch_size", type=int, default=8,
                    help="utterances per encoder call (hf models without an attention mask, e.g. wav2vec2-base, "
                    "see zero padding: 1 gives their exact unbatched outputs)")
    ap.add_argument("--ngpu", type=int, default=0, help="0: CPU; >0: run the encoder on CUDA (torch backends)")
    ap.add_argument("--config", type=Path, help="decoding YAML whose psd_threshold to use")
    ap.add_argument("--psd_threshold", type=float,
                    help="drop frames whose blank probability is above this (default: config, else 0.5)")
    ap.add_argument("--nj", type=int, default=1, help="parallel jobs (processes of this machine)")
    ap.add_argument("--job", metavar="J/N",
                    help="dump only the J-th of N parts of the data dir (one job of utils/run_jobs.sh, e.g. on "
                         "Slurm); its results wait in <out>/job.J.json for --merge N")
    ap.add_argument("--merge", type=int, metavar="N",
                    help="merge the outputs of the N --job runs into feats.scp, feats.info, psd_stats, units_hyp "
                         "and skipped (no audio is read)")
    ap.add_argument("--topk", type=int, default=0,
                    help="store each PSD row's K most probable units only (0: dense rows; for inventories of "
                         "thousands of units, e.g. 16 for SenseVoice's 25 055)")
    ap.add_argument("--skip_bad_audio", type=_str2bool, default=False,
                    help="skip unreadable audio with a logged count instead of stopping")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    try:
        dd = DataDir.load(args.data, require=("wav.scp",))
    except DataError as e:
        log.error("%s", e)
        return 1
    if args.psd_threshold is None:
        from tasu.config import DecodeConfig, load_config

        try:
            args.psd_threshold = (load_config(args.config, DecodeConfig) if args.config
                                  else DecodeConfig()).psd_threshold
        except (ValueError, FileNotFoundError) as e:  # the message names the config file
            log.error("%s", e)
            return 1
    if args.topk < 0:
        log.error("--topk must be >= 0, got %d", args.topk)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    from tasu.posteriors import INFO_FILE

    if args.merge is not None:
        return merge(args)
    (args.out / INFO_FILE).unlink(missing_ok=True)  # the format of the old dump goes with it
    device = "cuda" if args.ngpu > 0 else "cpu"
    uids = dd.utt_ids
    part = None
    if args.job is not None:
        try:
            j, n = (int(x) for x in args.job.split("/"))
            if not 1 <= j <= n:
                raise ValueError
        except ValueError:
            log.error("--job expects J/N with 1 <= J <= N, got %r", args.job)
            return 1
        part, uids = j, uids[j - 1::n]
    nj = 1 if part is not None else max(1, min(args.nj, len(uids)))
    try:
        if nj == 1:
            tag = f".{part}" if part is not None else ""
            skipped, stats, n_units = dump(dd, uids, args.out, args.encoder, args.psd_threshold, args.skip_bad_audio,
                                           tag, args.batch_size, device, args.topk)
            scps = [args.out / f"feats{tag}.scp"]
        else:
            from concurrent.futures import ProcessPoolExecutor

            parts = [uids[i::nj] for i in range(nj)]
            with ProcessPoolExecutor(nj) as ex:
                futs = [ex.submit(dump, dd, p, args.out, args.encoder, args.psd_threshold,
                                  args.skip_bad_audio, f".{j + 1}", args.batch_size, device, args.topk)
                        for j, p in enumerate(parts)]
                res = [f.result() for f in futs]
            skipped = [s for r in res for s in r[0]]
            stats = [s for r in res for s in r[1]]
            n_units = res[0][2]
            scps = [args.out / f"feats.{j + 1}.scp" for j in range(nj)]
    # bad audio; an encoder that cannot load (names its dir)
    except (DataError, ValueError, ImportError, OSError, RuntimeError) as e:
        log.error("%s", e)
        return 1
    if part is not None:  # one job of several: its results wait for --merge
        atomic_write_text(args.out / f"job.{part}.json", json.dumps(
            {"skipped": skipped, "stats": stats, "n_units": n_units, "topk": args.topk}) + "\n")
        log.info("%s: job %s: %d utterances dumped, %d skipped", args.data, args.job,
                 len(scps[0].read_text().splitlines()), len(skipped))
        return 0
    finish(args, scps, skipped, stats, n_units, merged=nj > 1)
    return 0


def merge(args: argparse.Namespace) -> int:
    """``--merge N``: the N jobs' scps and results into the dump dir's files."""
    n = args.merge
    skipped, stats, units = [], [], set()
    for j in range(1, n + 1):
        path = args.out / f"job.{j}.json"
        if not path.is_file() or not (args.out / f"feats.{j}.scp").is_file():
            log.error("%s: missing: job %d of %d did not finish (see its log)", path, j, n)
            return 1
        res = json.loads(path.read_text())
        if res["topk"] != args.topk:
            log.error("%s: job %d stored top-%d rows, the merge asks for --topk %d", path, j, res["topk"], args.topk)
            return 1
        skipped += res["skipped"]
        stats += [tuple(s) for s in res["stats"]]
        units.add(res["n_units"])
    finish(args, [args.out / f"feats.{j}.scp" for j in range(1, n + 1)], skipped, stats, units.pop(), merged=True)
    for j in range(1, n + 1):
        (args.out / f"job.{j}.json").unlink()
    return 0


def finish(args: argparse.Namespace, scps: list[Path], skipped: list[str], stats: list, n_units: int,
           merged: bool) -> None:
    """Write feats.scp (the parts' scps merged), feats.info, skipped, psd_stats and units_hyp."""
    from tasu.posteriors import INFO_FILE, info_text

    lines = sorted(line for p in scps for line in p.read_text().splitlines())
    if merged:
        atomic_write_text(args.out / "feats.scp", "".join(line + "\n" for line in lines))
        for p in scps:
            p.unlink()
    if args.topk:
        atomic_write_text(args.out / INFO_FILE, info_text(args.topk, n_units))
    atomic_write_text(args.out / "skipped", "".join(s + "\n" for s in sorted(skipped)))
    atomic_write_text(args.out / "psd_stats", "".join(f"{u} {a} {b}\n" for u, a, b, _ in sorted(stats)))
    atomic_write_text(args.out / "units_hyp",
                      "".join(f"{u} {h}\n".replace(" \n", "\n") for u, _, _, h in sorted(stats)))
    n_in = sum(a for _, a, _, _ in stats)
    n_out = sum(b for _, _, b, _ in stats)
    log.info("%s: %d utterances dumped, %d skipped (see %s); PSD kept %d of %d frames (%.1f%%)",
             args.data, len(lines), len(skipped), args.out / "skipped", n_out, n_in, 100 * n_out / max(n_in, 1))

if __name__ == "__main__":
    sys.exit(main())
