"""Sharded training text (tasu.shards): the streamed table reader, the shard builder and its
re-runs, batches shard by shard, and the trainer on shards (the CLI on one and two ranks: test_dist)."""
import json
import random

import numpy as np
import pytest
from test_model import ToyTokenizer, V

from tasu.data import DataError, read_kv, stream_table
from tasu.examples import make_examples
from tasu.shards import MANIFEST, ShardedExamples, build_shards
from tasu.units import UnitInventory

INV = UnitInventory([f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"])
EOS = 2


def tables(tmp_path, n=11, extra_text=()):
    """``units`` (n utterances) and ``text`` (the same + ``extra_text`` keys without units)."""
    rng = np.random.default_rng(0)
    units, text = {}, {}
    for i in range(n):
        k = f"utt{i:03d}"
        units[k] = " ".join(f"u{j}" for j in rng.integers(0, V - 2, size=rng.integers(1, 9)))
        text[k] = " ".join(["word"] * int(rng.integers(1, 5))) + f" {i}"
    for k in extra_text:
        text[k] = "no units here"
    (tmp_path / "units").write_text("".join(f"{k} {v}\n" for k, v in sorted(units.items())))
    (tmp_path / "text").write_text("".join(f"{k} {v}\n" for k, v in sorted(text.items())))
    return tmp_path / "units", tmp_path / "text"


def test_stream_table_reads_what_read_kv_reads_and_names_bad_lines(tmp_path):
    u, t = tables(tmp_path)
    assert {x.key: x.value for x in stream_table(t)} == read_kv(t)
    cases = {b"a 1\nc 2\nb 3\n": r":3: not sorted", b"a 1\nb 2\nb 3\n": r":3: duplicate key 'b' \(first on line 2\)",
             b"a 1\n\nb 2\n": r":2: blank line", b"a 1\nb \xff\n": r":2: not valid UTF-8",
             b"a 1\nb\n": r":2: key 'b' has an empty value", b"\xef\xbb\xbfa 1\n": r":1: .*byte-order mark"}
    for i, (data, msg) in enumerate(cases.items()):
        p = tmp_path / f"bad{i}"
        p.write_bytes(data)
        with pytest.raises(DataError, match=f"^{p}{msg}"):
            list(stream_table(p))
        with pytest.raises(DataError, match=f"^{p}{msg}"):  # the same message as the whole-file reader
            read_kv(p)
    with pytest.raises(DataError, match="file does not exist"):
        list(stream_table(tmp_path / "missing"))


def test_shards_hold_the_in_memory_examples(tmp_path):
    u, t = tables(tmp_path, extra_text=["utt005x", "zzz"])  # text lines without units are passed over
    d = build_shards(u, t, INV, ToyTokenizer(), EOS, tmp_path / "shards", shard_size=4)
    sh = ShardedExamples(d)
    assert len(sh) == 11 and sh.shards == ["shard000000.npz", "shard000001.npz", "shard000002.npz"]
    want = make_examples(read_kv(u), read_kv(t), INV, ToyTokenizer(), EOS)
    got = list(sh)
    assert [e.uid for e in got] == [e.uid for e in want]
    for a, b in zip(got, want):
        assert a.unit_ids.tolist() == b.unit_ids.tolist() and a.answer_ids == b.answer_ids and a.text == b.text
    assert sh.active_units == {int(i) for e in want for i in e.unit_ids}
    man = json.loads((d / MANIFEST).read_text())
    assert man["n_units"] == sum(len(e.unit_ids) for e in want)
    assert man["n_tokens"] == sum(len(e.answer_ids) for e in want)


def test_shards_are_rebuilt_only_when_out_of_date_or_cut_short(tmp_path):
    u, t = tables(tmp_path)
    d = tmp_path / "shards"
    build_shards(u, t, INV, ToyTokenizer(), EOS, d, shard_size=4)
    stamp = (d / "shard000000.npz").stat().st_mtime_ns
    build_shards(u, t, INV, ToyTokenizer(), EOS, d, shard_size=4)  # up to date: kept
    assert (d / "shard000000.npz").stat().st_mtime_ns == stamp
    build_shards(u, t, INV, ToyTokenizer(), EOS, d, shard_size=6)  # another shard size: rebuilt
    assert sorted(p.name for p in d.glob("shard*.npz")) == ["shard000000.npz", "shard000001.npz"]
    tables(tmp_path, n=3)  # the inputs changed: rebuilt
    build_shards(u, t, INV, ToyTokenizer(), EOS, d, shard_size=6)
    assert len(ShardedExamples(d)) == 3 and len(list(d.glob("shard*.npz"))) == 1
    (d / MANIFEST).unlink()  # a build cut short before its manifest: not readable, built again
    with pytest.raises(FileNotFoundError, match="no shards.json"):
        ShardedExamples(d)
    build_shards(u, t, INV, ToyTokenizer(), EOS, d, shard_size=6)
    assert len(ShardedExamples(d)) == 3


def test_bad_training_tables_are_errors_naming_file_and_line(tmp_path):
    u, t = tables(tmp_path)
    t.write_text("".join(x for x in t.read_text().splitlines(keepends=True) if not x.startswith("utt004")))
    with pytest.raises(DataError, match=rf"^{u}:5: utterance 'utt004' has units but no transcript"):
        build_shards(u, t, INV, ToyTokenizer(), EOS, tmp_path / "a", shard_size=4)
    u, t = tables(tmp_path)
    lines = u.read_text().splitlines(keepends=True)
    lines[6] = lines[6].rstrip("\n") + " zz9\n"
    u.write_text("".join(lines))
    with pytest.raises(DataError, match=rf"^{u}:7: utterance 'utt006': unit 'zz9' is not in the inventory"):
        build_shards(u, t, INV, ToyTokenizer(), EOS, tmp_path / "b", shard_size=4)
    assert not (tmp_path / "b" / MANIFEST).exists()
    u.write_text("")
    with pytest.raises(DataError, match="no utterances to train on"):
        build_shards(u, t, INV, ToyTokenizer(), EOS, tmp_path / "c", shard_size=4)


def test_batches_see_every_example_once_an_epoch_one_shard_at_a_time(tmp_path):
    u, t = tables(tmp_path, n=23)
    sh = ShardedExamples(build_shards(u, t, INV, ToyTokenizer(), EOS, tmp_path / "s", shard_size=5))
    per_epoch = 4 * 3 + 2  # four shards of 5 in batches of 2 (3 each), one of 3 (2)
    it = sh.batches(2, random.Random(3))
    for _ in range(2):
        epoch = [next(it) for _ in range(per_epoch)]
        assert sorted(e.uid for b in epoch for e in b) == sorted(read_kv(u))
        for b in epoch:  # a batch never mixes shards
            assert len({int(e.uid[3:]) // 5 for e in b}) == 1
    a, b = sh.batches(2, random.Random(3)), sh.batches(2, random.Random(3))
    assert [[e.uid for e in next(a)] for _ in range(30)] == [[e.uid for e in next(b)] for _ in range(30)]


def test_trainer_trains_from_shards(tmp_path):
    from test_train import trainer

    from tasu.train import Trainer

    t = trainer(tmp_path / "t", bad_calls=set(), max_steps=3)
    u, tx = tables(tmp_path, n=9)
    sh = ShardedExamples(build_shards(u, tx, INV, ToyTokenizer(), t.model.template.eos_id, tmp_path / "s", 4))
    tr = Trainer(t.cfg, t.model, t.sim, sh, [], tmp_path / "exp")
    tr.run()
    assert tr.step == 3 and (tmp_path / "exp" / "model.pt").is_file()
