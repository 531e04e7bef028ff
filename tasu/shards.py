"""Training text in shards on disk, read one shard at a time instead of held whole in memory.

Held in memory, text-only examples cost about 0.14 GB per million words of training text (the
tables as dicts, then unit-id arrays and token tuples: measured on open_en's 4.19 M words), so
LibriSpeech's 9.4 M transcript words fit but its 800 M-word LM text does not. With
``shard_size: N`` (:class:`tasu.config.TrainConfig`) the trainer instead converts the sorted
``units`` and ``text`` tables once, streaming both (:func:`tasu.data.stream_table`), into shards
of N examples under ``<expdir>/shards``, and draws its batches a shard at a time:

    shards/shard000000.npz ...   unit ids, answer token ids, uids and text, each flat + offsets
    shards/shards.json           what was converted from what; written last, so a run cut short
                                 converts again (and a changed input or tokenizer too)

Batches are drawn as from the whole set (:func:`tasu.examples.epoch_batches`: shuffle, length
buckets), but within one shard, shards in a new random order each epoch; every example is seen
once per epoch. Memory: one shard as examples plus its arrays (measured: +0.55 GB of peak RSS
with shards of 200 000 sentences, against +6.0 GB for 39 M words held whole).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tasu.data import DataError, location, stream_table
from tasu.examples import TextExample, answer_ids, epoch_batches, unit_ids
from tasu.fileio import atomic_write_bytes, atomic_write_text
from tasu.units import UnitInventory

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "shards.json"


def _file_sig(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _signature(units: Path, text: Path, inventory: UnitInventory, tokenizer, eos_id: int, shard_size: int) -> dict:
    """What the shards are made from: a manifest with another signature is out of date."""
    vocab = hashlib.sha1("\n".join(inventory.units).encode()).hexdigest()
    probe = tokenizer("Tokenizer check: 42 words, Zoë's café.", add_special_tokens=False)["input_ids"]
    return {"format": FORMAT, "units": _file_sig(units), "text": _file_sig(text), "inventory": vocab,
            "tokenizer": [getattr(tokenizer, "name_or_path", ""), getattr(tokenizer, "vocab_size", None),
                          list(probe), eos_id],
            "shard_size": shard_size}


def _flat(parts: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(parts) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(p) for p in parts])
    flat = np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
    return flat, off


def _write_shard(path: Path, uids: list[str], units: list[np.ndarray], answers: list[tuple[int, ...]],
                 texts: list[str], unit_dtype) -> None:
    import io

    arrays = {}
    arrays["units"], arrays["units_off"] = _flat(units, unit_dtype)
    arrays["answer"], arrays["answer_off"] = _flat([np.asarray(a, dtype=np.int64) for a in answers], np.int32)
    for name, strs in (("uid", uids), ("text", texts)):
        arrays[name], arrays[name + "_off"] = _flat([np.frombuffer(s.encode(), dtype=np.uint8) for s in strs],
                                                    np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def joined_lines(units: Path, text: Path) -> Iterator[tuple[str, str, str, int]]:
    """``(uid, units, transcript, line of units)`` of every utterance of a sorted units file,
    joined with the sorted text table by a merge (both streamed). Text lines without units are
    passed over (make_units logs its skips); units without a transcript are an error."""
    texts = stream_table(text)
    cur = next(texts, None)
    for u in stream_table(units):
        while cur is not None and cur.key < u.key:
            cur = next(texts, None)
        if cur is None or cur.key != u.key:
            raise DataError(f"{location(units, u.line)}utterance {u.key!r} has units but no transcript in {text}")
        yield u.key, u.value, cur.value, u.line


def build_shards(units: Path, text: Path, inventory: UnitInventory, tokenizer, eos_id: int, outdir: Path,
                 shard_size: int) -> Path:
    """Convert ``units`` + ``text`` into shards under ``outdir`` unless up-to-date ones are there.

    Unknown units are an error naming ``file:line``. Returns ``outdir``.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    units, text = Path(units), Path(text)
    sig = _signature(units, text, inventory, tokenizer, eos_id, shard_size)
    man = outdir / MANIFEST
    if man.is_file():
        try:
            old = json.loads(man.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("signature") == sig and all((outdir / f).is_file() for f in old.get("shards", [])):
            log.info("%s: %d shards of %s up to date (%d examples)", outdir, len(old["shards"]), units,
                     old["n_examples"])
            return outdir
    outdir.mkdir(parents=True, exist_ok=True)
    if man.exists():
        man.unlink()  # out of date: nothing reads these shards until a new manifest is written
    for old_shard in outdir.glob("shard*.npz"):
        old_shard.unlink()
    index = inventory.index()
    unit_dtype = np.uint16 if inventory.size <= 65536 else np.int32
    names: list[str] = []
    sizes: list[int] = []
    active: set[int] = set()
    n_ex = n_units = n_tok = 0
    uids: list[str] = []
    ids: list[np.ndarray] = []
    sents: list[str] = []

    def flush() -> None:
        nonlocal n_tok
        if not uids:
            return
        answers = answer_ids(tokenizer, sents, eos_id)  # the shard's text in one call
        n_tok += sum(map(len, answers))
        name = f"shard{len(names):06d}.npz"
        _write_shard(outdir / name, uids, ids, answers, sents, unit_dtype)
        names.append(name)
        sizes.append(len(uids))
        for part in (uids, ids, sents):
            part.clear()

    for uid, ustr, sent, line in joined_lines(units, text):
        try:
            u = unit_ids(ustr, index)
        except KeyError as e:
            raise DataError(f"{location(units, line)}utterance {uid!r}: unit {e.args[0]!r} is not in the "
                            f"inventory of the encoder ({inventory.size} units)") from None
        active.update(np.unique(u).tolist())
        uids.append(uid)
        ids.append(u)
        sents.append(sent)
        n_ex, n_units = n_ex + 1, n_units + len(u)
        if len(uids) == shard_size:
            flush()
    flush()
    if not n_ex:
        raise DataError(f"{location(units)}no utterances to train on")
    atomic_write_text(man, json.dumps({
        "signature": sig, "shards": names, "sizes": sizes, "n_examples": n_ex, "n_units": n_units, "n_tokens": n_tok,
        "active_units": sorted(active)}, indent=1) + "\n")
    log.info("%s: %d examples of %s in %d shards of up to %d (%d units, %d answer tokens)", outdir, n_ex, units,
             len(names), shard_size, n_units, n_tok)
    return outdir


class ShardedExamples:
    """Text-only training examples in shards (:func:`build_shards`), read one shard at a time."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        try:
            self.manifest = json.loads((self.dir / MANIFEST).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.dir}: no {MANIFEST} (shards not built, or their building was "
                                    "cut short: build them again)") from None
        self.shards = list(self.manifest["shards"])
        self.shard_sizes = list(self.manifest["sizes"])

    def __len__(self) -> int:
        return int(self.manifest["n_examples"])

    def __bool__(self) -> bool:
        return len(self) > 0

    @property
    def active_units(self) -> set[int]:
        """Every unit id the examples use."""
        return set(self.manifest["active_units"])

    def shard(self, i: int) -> list[TextExample]:
        """The examples of shard ``i``."""
        path = self.dir / self.shards[i]
        try:
            with np.load(path) as z:
                a = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{location(path)}cannot read the shard ({type(e).__name__}: {e}); delete "
                            f"{self.dir / MANIFEST} to build the shards again") from None
        uo, ao, io, to = a["units_off"], a["answer_off"], a["uid_off"], a["text_off"]
        units, answer, uid, text = a["units"].astype(np.int64), a["answer"].tolist(), a["uid"], a["text"]
        return [TextExample(uid[io[j]:io[j + 1]].tobytes().decode(), units[uo[j]:uo[j + 1]],
                            tuple(answer[ao[j]:ao[j + 1]]), text[to[j]:to[j + 1]].tobytes().decode())
                for j in range(len(uo) - 1)]

    def __iter__(self) -> Iterator[TextExample]:
        for i in range(len(self.shards)):
            yield from self.shard(i)

    def batches(self, batch_size: int, rng: random.Random, bucket: int = 50,
                max_positions: int = 0) -> Iterator[list[TextExample]]:
        """Endless shuffled batches of similar length, shard by shard, epoch after epoch."""
        while True:
            order = list(range(len(self.shards)))
            rng.shuffle(order)
            for i in order:
                yield from epoch_batches(self.shard(i), batch_size, rng, bucket, max_positions)
