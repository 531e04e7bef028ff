#!/usr/bin/env python3
"""Transcribe audio with a trained TASU model (``tasu-infer``).

Inputs (positional, any mix):
  an audio file (wav, flac, ogg...)   key: the file name (``a.wav``; whitespace becomes ``_``)
  a ``*.scp`` file (Kaldi wav.scp)     key: the utterance id; values: path, ``cmd |`` or ``x.ark:off``
  a Kaldi data dir                     key: the utterance id (``segments`` honoured)
Output: one line ``<key> <answer>`` per input in input order, on stdout or in ``--output``:
Kaldi ``text`` format, so it scores directly against a reference ``text``
(``python -m tasu.bin.score --ref data/x/text --hyp out.txt``).

Model (``--model``): a packed zip (stage 6), an unpacked model dir, an exp dir, or a hub id
when online; by default the model shipped with the package (see the README for its WER).
Decoding settings: the model's packed ``decode.yaml``, or ``--config``; with
``acoustic_weight`` > 0 there, the beam's answers are re-ranked by how well their units fit
the posteriors (:mod:`tasu.rescore`; new words go through the encoder's G2P, in memory).
Any sample rate and channel count is accepted: audio is downmixed to mono and resampled to
the encoder's 16 kHz. Inputs are read in chunks of ``--chunk`` and decoded in batches of
similar length, so long lists stream with a progress bar (stderr).

Rule for bad input: an input that cannot be read (missing, corrupt, empty audio, a malformed
wav.scp line, a repeated key) is reported on stderr with its file (and wav.scp line), gets no
output line, and the run goes on. Audio whose speech is all blank after PSD gets an empty
answer (the key alone) and is counted. Exit status: 0 when every input was answered, 1 when
some were skipped (all the others are written), 2 for a usage or model error.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasu.audio import load_audio, read_audio
from tasu.data import DataDir, DataError, read_table_lines

log = logging.getLogger("tasu.infer")


@dataclass(frozen=True)
class Entry:
    """One input: its output key, where it came from (for messages), how to read it."""

    key: str
    where: str
    read: Callable[[], tuple[np.ndarray, int]] | None  # None: the input itself is malformed
    error: str = ""


def _entries_from_scp(path: Path) -> Iterator[Entry]:
    for t in read_table_lines(path):
        where = f"{path}:{t.line}"
        if not t.key:
            yield Entry("", where, None, "blank line")
        elif not t.value:
            yield Entry(t.key, where, None, f"key {t.key!r} has no audio")
        else:
            yield Entry(t.key, where, (lambda v=t.value: read_audio(v)))


def _entries_from_dir(path: Path) -> Iterator[Entry]:
    dd = DataDir.load(path, require=("wav.scp",))
    for uid in dd.utt_ids:
        yield Entry(uid, dd.where(dd.audio_file, uid).rstrip(": "), (lambda u=uid: load_audio(dd, u)))


def iter_entries(inputs: list[str]) -> Iterator[Entry]:
    """Expand the command-line inputs into entries, lazily (a wav.scp is read line by line)."""
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            yield from _entries_from_dir(p)
        elif p.suffix == ".scp":
            if not p.is_file():
                yield Entry("", arg, None, "wav.scp file does not exist")
                continue
            yield from _entries_from_scp(p)
        else:
            key = re.sub(r"\s+", "_", p.name)
            yield Entry(key, arg, (lambda a=arg: read_audio(a)))


def _chunks(it: Iterator[Entry], n: int) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for e in it:
        chunk.append(e)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tasu-infer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="audio files, wav.scp files (*.scp) or Kaldi data dirs")
    ap.add_argument("--encoder", help="CTC encoder spec (default: the one the model was trained with, "
                    "`encoder:` in its config; hama for older models)")
    ap.add_argument("--model", help="packed zip, model dir, exp dir or hub id (default: the shipped model)")
    ap.add_argument("--task", help="ask this task of the registry (its prompt; e.g. intent for a model trained "
                    "on it) instead of the model's own prompt")
    ap.add_argument("--tasks_file", type=Path, help="task registry (default: tasu/conf/tasks.yaml)")
    ap.add_argument("--output", "-o", type=Path, help="write `<key> <answer>` lines here instead of stdout")
    ap.add_argument("--batch_size", type=int, help="utterances per generation batch (default: decode config)")
    ap.add_argument("--chunk", type=int, default=64, help="inputs read and decoded at a time (default 64)")
    ap.add_argument("--config", type=Path,
                    help="decoding YAML in place of the model's own (e.g. egs/open_en/conf/decode_rescore.yaml: "
                         "8 beams re-ranked by acoustic fit, when acoustic_weight > 0)")
    ap.add_argument("--lexicon", type=Path,
                    help="training lexicon (word<TAB>units lines, a recipe's dump/lexicon.txt; read only): the words "
                         "n-best expansion proposes and the pronunciations rescoring starts from (default: the "
                         "one packed with the model)")
    ap.add_argument("--hotwords", type=Path,
                    help="words and phrases to favour, one a line, an optional score after a tab (or sherpa-onnx's "
                         "' :score'); see tasu/hotwords.py and docs/inference.md")
    ap.add_argument("--hotwords_per_utt", type=Path,
                    help="per-input lists, `<key> w1 w2 ...` lines (the biasing benchmark's shape), with --hotwords "
                         "or alone")
    ap.add_argument("--hotwords_score", type=float,
                    help="score a word of a listed phrase adds (default: decode config's hotword_score)")
    ap.add_argument("--num_beams", type=int, help="beam size (default: decode config)")
    ap.add_argument("--max_new_tokens", type=int, help="answer length limit (default: decode config)")
    ap.add_argument("--psd_threshold", type=float, help="blank threshold of PSD (default: decode config)")
    ap.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: the first CUDA device")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress bar or info logs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    from tqdm import tqdm

    if args.quiet:
        import warnings

        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)

    from tasu.inference import Speech2Text
    from tasu.runtime import device_from_ngpu

    options = dict(batch_size=args.batch_size or None, num_beams=args.num_beams or None,
                   max_new_tokens=args.max_new_tokens or None,
                   psd_threshold=args.psd_threshold, hotword_score=args.hotwords_score)
    try:  # every error names its file: the --config, the task registry, the model's files, its LLM
        task = None
        if args.task:
            from tasu.tasks import load_tasks

            task = load_tasks(args.tasks_file).get(args.task, where="--task")
        s2t = Speech2Text.from_pretrained(args.model, device=device_from_ngpu(args.ngpu), decode_config=args.config,
                                          options=options, encoder=args.encoder, task=task,
                                          training_lexicon=args.lexicon, hotwords=args.hotwords,
                                          hotwords_per_utt=args.hotwords_per_utt)
    except (ValueError, OSError, RuntimeError) as e:  # ZooError is a RuntimeError; HotwordError names file:line
        log.error("%s", e)
        return 2
    try:  # the encoder (audio -> posteriors; text -> units when rescoring): spec, dir, package, units
        s2t.encoder  # noqa: B018
    except (ValueError, ImportError, OSError) as e:
        log.error("%s", e)
        return 2
    try:  # rescoring and n-best expansion read the lexicon now, so that its errors come first
        if s2t.rescorer is not None:
            log.info("answers re-ranked by acoustic fit (weight %g; beam %d)", s2t.decode_config.acoustic_weight,
                     s2t.decode_config.num_beams)
        if s2t.expander is not None:
            log.info("n-best expansion: up to %d words of %s a span", s2t.decode_config.expand_per_span,
                     s2t.training_lexicon)
        if s2t.biasing is not None:
            log.info("hotwords: %d global phrases, per-input lists for %d inputs (score %g a word)",
                     len(s2t.biasing.global_phrases), len(s2t.biasing.per_utt), s2t.decode_config.hotword_score)
    except (ValueError, OSError) as e:
        log.error("%s", e)
        return 2
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    seen: dict[str, str] = {}
    n_done = n_skipped = n_empty = 0
    audio_s, t0 = 0.0, time.time()
    bar = tqdm(desc="infer", unit="utt", disable=args.quiet or None, mininterval=5, file=sys.stderr)
    try:
        for chunk in _chunks(iter_entries(args.inputs), max(1, args.chunk)):
            items, keys = [], []
            for e in chunk:
                bar.update(1)
                if e.read is None:
                    log.error("%s: skipped: %s", e.where, e.error)
                    n_skipped += 1
                    continue
                if e.key in seen:
                    log.error("%s: skipped: key %r repeats %s", e.where, e.key, seen[e.key])
                    n_skipped += 1
                    continue
                seen[e.key] = e.where
                try:
                    wave, sr = e.read()
                    if wave.size == 0:
                        raise DataError(f"{e.where}: audio is empty (0 samples)")
                except DataError as err:
                    msg = str(err)
                    log.error("%s: skipped", msg if msg.startswith(e.where) else f"{e.where}: {msg}")
                    n_skipped += 1
                    continue
                audio_s += len(wave) / sr
                post = s2t.posteriors(wave, sr)
                keys.append(e.key)
                if post.shape[0] == 0:
                    n_empty += 1
                    log.warning("%s: no speech after PSD (all frames blank); empty answer", e.where)
                items.append((e.key, post))
            answers = s2t.decode_posteriors(items)
            for k in keys:
                h = answers[k].text
                out.write(f"{k} {h}\n" if h else f"{k}\n")
                n_done += 1
            out.flush()
    except DataError as e:  # a malformed data dir: nothing of it can be trusted
        log.error("%s", e)
        return 2
    finally:
        bar.close()
        if args.output:
            out.close()
    if s2t.biasing is not None and s2t.biasing.per_utt:
        from tasu.hotwords import unknown_utterances

        unknown = unknown_utterances(s2t.biasing.per_utt, seen)
        if unknown:
            log.warning("%s: %d per-input hotword lists name no input (e.g. %r): not used", args.hotwords_per_utt,
                        len(unknown), unknown[0])
    log.info("answered %d inputs (%d with no speech after PSD), skipped %d", n_done, n_empty, n_skipped)
    if audio_s > 0:
        el = time.time() - t0
        log.info("%.1f s for %.1f s of audio: real-time factor %.3f; by stage: %s", el, audio_s, el / audio_s,
                 ", ".join(f"{k} {v:.1f} s" for k, v in sorted(s2t.timings.items())))
    return 1 if n_skipped else 0


if __name__ == "__main__":
    sys.exit(main())
