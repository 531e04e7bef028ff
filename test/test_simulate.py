"""Posterior simulation: the noise statistics match the configured rates."""
from pathlib import Path

import numpy as np
import pytest

from tasu.config import SimulationConfig
from tasu.simulate import PosteriorSimulator, compound_splits

UNITS = ["<pad>", "a", "e", "i", "o", "p", "t", "k", "s", "m", "n", "<wb>", "<blank>"]
WB = UNITS.index("<wb>")
ACTIVE = list(range(1, 11))


def sim(**kw):
    return PosteriorSimulator(len(UNITS), ACTIVE, UNITS, WB, SimulationConfig(**kw))


def test_clean_rows_are_one_hot_like():
    s = sim(drop=0, substitute=0, repeat=0, insert=0, wb_drop=0, smooth_min=0.1, smooth_max=0.1)
    ids = [1, 5, WB, 2, 6]
    rows = s(ids, np.random.default_rng(0))
    assert rows.shape == (5, len(UNITS))
    np.testing.assert_allclose(rows.sum(1), 1, atol=1e-5)
    assert list(rows.argmax(1)) == ids
    assert rows[:, UNITS.index("<blank>")].max() == 0  # no mass on units outside the active set
    assert (rows.max(1) >= 0.9 - 1e-6).all() and (rows.max(1) < 1).all()


def test_event_rates_match_config():
    # strength fixed at 1 so that rates are exactly the configured ones
    cfg = dict(drop=0.1, substitute=0.2, repeat=0.05, insert=0.08, wb_drop=0.0,
               strength_min=1.0, strength_max=1.0)
    s = sim(**cfg)
    rng = np.random.default_rng(1)
    n, subs, extra = 0, 0, 0
    for _ in range(400):
        ids = list(rng.choice(ACTIVE, size=50))
        out = s.noisy_ids(ids, rng)
        n += len(ids)
        extra += len(out)
    # expected length per input unit: (1 - drop) * (1 + repeat + insert)
    expected = (1 - 0.1) * (1 + 0.05 + 0.08)
    assert abs(extra / n - expected) < 0.02
    # substitutions always change the unit
    s2 = sim(drop=0, substitute=0.2, repeat=0, insert=0, wb_drop=0, strength_min=1, strength_max=1)
    for _ in range(400):
        ids = list(rng.choice(ACTIVE, size=50))
        out = s2.noisy_ids(ids, rng)
        assert len(out) == len(ids)
        subs += sum(a != b for a, b in zip(ids, out))
    assert abs(subs / n - 0.2) < 0.01


def test_word_boundary_drop_rate():
    s = sim(drop=0, substitute=0, repeat=0, insert=0, wb_drop=0.3, strength_min=1, strength_max=1)
    rng = np.random.default_rng(2)
    ids = [1, WB] * 5000
    out = s.noisy_ids(ids, rng)
    assert abs(1 - out.count(WB) / 5000 - 0.3) < 0.03
    assert out.count(1) == 5000


def test_word_boundary_insert_rate_splits_words_only_inside():
    s = sim(drop=0, substitute=0, repeat=0, insert=0, wb_drop=0, wb_insert=0.2, strength_min=1, strength_max=1)
    rng = np.random.default_rng(3)
    ids = [1, 2, 3, WB] * 3000  # two word-internal positions per word
    out = s.noisy_ids(ids, rng)
    added = out.count(WB) - 3000
    assert abs(added / 6000 - 0.2) < 0.02
    assert [u for u in out if u != WB] == [u for u in ids if u != WB]
    assert all(not (a == WB and b == WB) for a, b in zip(out, out[1:]))  # never next to a boundary


# a lexicon as stage 1 writes it: word -> units, and each unit's letters ("-": none)
LEX = {"tea": ("t", "i"), "pot": ("p", "o", "t"), "teapot": ("t", "i", "p", "o", "t"),
       "a": ("a",), "map": ("m", "a", "p"), "amap": ("a", "m", "a", "p"),
       "tap": ("t", "a", "p"), "tmap": ("t", "m", "a", "p"),              # t|map: one letter
       "atom": ("a", "t", "o", "m"), "at": ("a", "t"), "om": ("o", "m"),  # at|om: "om" is too short
       "kept": ("k", "e", "p", "t"), "ke": ("k", "i"), "pt": ("p", "t"),
       "mesas": ("m", "e", "s", "a", "s"), "mes": ("m", "i", "s"), "sas": ("s", "o", "s")}
LETTERS = {w: tuple(w) for w in LEX} | {"tea": ("t", "ea"), "teapot": ("t", "ea", "p", "o", "t")}
INDEX = {u: i for i, u in enumerate(UNITS)}


def ids_of(*words):
    out = []
    for w in words:
        out += ([WB] if out else []) + [INDEX[u] for u in LEX[w]]
    return out


def test_compound_splits_are_where_both_halves_are_words_and_one_sounds_so():
    splits = compound_splits(LEX, LETTERS, INDEX)
    assert splits == {tuple(ids_of("teapot")): (2,),   # tea|pot, after the unit spelled "ea"
                      tuple(ids_of("amap")): (1,)}     # a|map: "a" is the one one-letter head
    # mes|as and me|sas: the halves are not both words, or neither sounds as in the word
    assert tuple(ids_of("mesas")) not in splits
    assert compound_splits({"teapot": LEX["teapot"], "tea": LEX["tea"], "pot": LEX["pot"]},
                           {"teapot": ("t", "ea", "p", "o")}, INDEX) == {}  # letters do not cover the units


def test_wb_split_puts_a_boundary_inside_compounds_at_the_configured_rate():
    splits = compound_splits(LEX, LETTERS, INDEX)
    quiet = dict(drop=0, substitute=0, repeat=0, insert=0, wb_drop=0, strength_min=1, strength_max=1)
    s = PosteriorSimulator(len(UNITS), ACTIVE, UNITS, WB, SimulationConfig(wb_split=0.3, **quiet), splits)
    rng = np.random.default_rng(4)
    ids = ids_of(*["teapot", "tea", "pot", "kept"] * 2000)
    out = s.noisy_ids(ids, rng)
    assert [u for u in out if u != WB] == [u for u in ids if u != WB]
    words = " ".join(map(str, out)).split(f" {WB} ")
    split = words.count(" ".join(map(str, ids_of("tea")))) - 2000   # "tea pot" beside 2 000 real "tea"s
    assert abs(split / 2000 - 0.3) < 0.04
    assert words.count(" ".join(map(str, ids_of("pot")))) - 2000 == split
    assert out.count(WB) - ids.count(WB) == split                    # and nowhere else
    # off (the default): the same draws as a simulator that has no splits
    plain = PosteriorSimulator(len(UNITS), ACTIVE, UNITS, WB, SimulationConfig())
    split_off = PosteriorSimulator(len(UNITS), ACTIVE, UNITS, WB, SimulationConfig(), splits)
    np.testing.assert_array_equal(plain(ids[:40], np.random.default_rng(5)),
                                  split_off(ids[:40], np.random.default_rng(5)))
    # on, but no splits given (the oracle rows of a model trained with it): no word is split
    no_splits = PosteriorSimulator(len(UNITS), ACTIVE, UNITS, WB, SimulationConfig(wb_split=0.3, **quiet))
    assert no_splits.noisy_ids(ids, np.random.default_rng(6)) == ids


def test_seeded_and_deterministic():
    s = sim()
    a = s([1, 2, 3, WB, 4], np.random.default_rng(7))
    b = s([1, 2, 3, WB, 4], np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_manner_classes_of_ipa_units():
    from tasu.simulate import unit_class

    assert [unit_class(u, "manner") for u in ["p", "ɡ", "s", "t͡ʃ", "n", "ɹ", "aɪ", "ɝ", "<wb>", "ˈ"]] == [
        "stop", "stop", "fricative", "fricative", "nasal", "approximant", "vowel", "vowel", None, None]
    assert unit_class("s", "vowel") == "consonant"


def test_substitutes_keep_their_class_at_the_configured_rate():
    s = sim(drop=0, substitute=1.0, repeat=0, insert=0, wb_drop=0, strength_min=1, strength_max=1,
            same_class=0.8, classes="manner")
    rng = np.random.default_rng(3)
    stops = [UNITS.index(u) for u in "ptk"]
    out, orig = s.noisy(stops * 500, rng)
    assert all(o in stops for o in orig)  # every row is a substitute here
    same = np.mean([u in stops for u in out])
    # same-class draws always give another stop; other draws hit a stop 2/9 of the time
    assert abs(same - (0.8 + 0.2 * 2 / 9)) < 0.03


def test_substituted_rows_are_unsure_and_keep_the_replaced_unit_as_runner_up():
    s = sim(drop=0, substitute=0.5, repeat=0, insert=0, wb_drop=0, strength_min=1, strength_max=1,
            smooth_min=0.0, smooth_max=0.1, sub_smooth_min=0.4, sub_smooth_max=0.6, true_competitor=0.6)
    rng = np.random.default_rng(4)
    ids = list(rng.choice(ACTIVE, size=4000))
    out, orig = s.noisy(ids, rng)
    rows = s.rows(out, rng, orig)
    orig = np.array(orig)
    sub = orig >= 0
    assert abs(sub.mean() - 0.5) < 0.03
    assert (rows[~sub].max(1) >= 0.9 - 1e-6).all()                # clean rows: eps <= 0.1
    top = rows[np.flatnonzero(sub), np.array(out)[sub]]  # mass on the substitute itself
    assert np.median(top) < 0.65 and (top >= 0.4 - 1e-6).all()
    second = np.argsort(-rows[sub], axis=1)[:, 1]
    assert abs((second == orig[sub]).mean() - 0.6) < 0.05


def test_simulate_posteriors_cli_writes_clean_oracle_rows(tiny_units, tmp_path):
    """``tasu.bin.simulate_posteriors`` with noise 0: one one-hot row per unit, in order."""
    import subprocess
    import sys

    import kaldiio
    from conftest import TOP

    from tasu.encoders import build_encoder

    # the config of a model trained with word boundaries inside words (open_en's w8 on): the oracle
    # rows of its sets are clean all the same
    MINI_TRAIN = str(tmp_path / "train.yaml")
    Path(MINI_TRAIN).write_text(f"base: {TOP / 'egs/mini_en/conf/train.yaml'}\nsimulation:\n  wb_split: 0.1\n")

    inv = build_encoder("hama").inventory
    inv.to_file(tmp_path / "units.txt")
    r = subprocess.run([sys.executable, "-m", "tasu.bin.simulate_posteriors",
                        "--units", str(tiny_units / "dump" / "units"),
                        "--inventory", str(tmp_path / "units.txt"), "--config", MINI_TRAIN,
                        "--out", str(tmp_path / "oracle")], cwd=TOP, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    feats = dict(kaldiio.load_scp(str(tmp_path / "oracle" / "feats.scp")))
    for line in (tiny_units / "dump" / "units").read_text().splitlines():
        uid, *units = line.split()
        assert feats[uid].shape == (len(units), inv.size)
        assert feats[uid].max(1).min() == 1.0 and [inv.units[i] for i in feats[uid].argmax(1)] == units
    # a unit outside the inventory: an error naming the file and line
    (tmp_path / "bad").write_text("a1 ð ə <wb> XX\n")
    r = subprocess.run([sys.executable, "-m", "tasu.bin.simulate_posteriors",
                        "--units", str(tmp_path / "bad"),
                        "--inventory", str(tmp_path / "units.txt"), "--config", MINI_TRAIN,
                        "--out", str(tmp_path / "o2")], cwd=TOP, capture_output=True, text=True)
    assert r.returncode == 1 and f"{tmp_path / 'bad'}:1: unit 'XX'" in r.stderr


def test_confusion_table_drives_substitutes_and_insertions(tmp_path):
    """Estimated from best paths (edit-distance alignment), then sampled by the simulator."""
    import subprocess
    import sys

    from conftest import TOP

    from tasu.simulate import read_confusions

    (tmp_path / "ref").write_text("u1 a b c <wb> d\nu2 a b\n")
    (tmp_path / "hyp").write_text("u1 a x c <wb> d e\nu2 x\n")
    r = subprocess.run([sys.executable, "-m", "tasu.bin.estimate_confusions", "--ref", str(tmp_path / "ref"),
                        "--hyp", str(tmp_path / "hyp"), "--out", str(tmp_path / "conf")],
                       cwd=TOP, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = {tuple(line.split()[:2]): int(line.split()[2]) for line in (tmp_path / "conf").read_text().splitlines()
            if not line.startswith("#")}
    # u1: b -> x, e inserted; u2: one of a, b deleted and the other replaced by x
    assert rows[("b", "x")] + rows.get(("a", "x"), 0) == 2 and rows[("<eps>", "e")] == 1
    assert rows.get(("a", "<eps>"), 0) + rows.get(("b", "<eps>"), 0) == 1 and rows[("c", "c")] == 1

    units = ["a", "b", "c", "d", "e", "x", "<wb>", "<blank>"]
    confused, inserted = read_confusions(str(tmp_path / "conf"), units, 6, min_count=1)
    assert set(confused) <= {0, 1} and 1 in confused and list(inserted[0]) == [4]
    cfg = SimulationConfig(substitute=1.0, drop=0.0, repeat=0.0, insert=1.0, wb_drop=0.0,
                           strength_min=1.0, strength_max=1.0, confusions=str(tmp_path / "conf"), confusion_min=1)
    sim = PosteriorSimulator(8, range(6), units, 6, cfg)
    out = sim.noisy_ids([1, 1, 1], np.random.default_rng(0))
    assert out == [5, 4] * 3  # b always becomes x (its only confusion), every insertion is e
    (tmp_path / "bad").write_text("a zz 3\n")
    with pytest.raises(ValueError, match=r"bad:1: unit 'zz' is not in the encoder's inventory"):
        read_confusions(str(tmp_path / "bad"), units, 6)
