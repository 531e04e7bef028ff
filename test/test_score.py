"""Tests for tasu.score and the ``python -m tasu.bin.score`` CLI (hand-computed cases)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jiwer
import pytest

from tasu.report import format_alignment, write_result, write_results_md
from tasu.score import ScoreResult, read_text, score_texts
from tasu.textnorm import normalize_text

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- normalize_text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The CAT Sat", "the cat sat"),
        ("Hello, world!  How are you?", "hello world how are you"),
        ("don't", "don't"),
        ("Don\u2019t stop", "don't stop"),  # curly apostrophe -> ASCII, kept
        ("'quoted' words", "quoted words"),
        ("\u2018quoted\u2019 \u201cdouble\u201d", "quoted double"),
        ('"straight" quotes', "straight quotes"),
        ("rock 'n' roll", "rock n roll"),
        ("the dogs' toys", "the dogs toys"),
        ("well-known", "well known"),
        ("state-of-the-art \u2014 model", "state of the art model"),
        ("\uff21\uff22\uff23 ok", "abc ok"),  # full-width letters via NFKC
        ("  lots \t of\n space  ", "lots of space"),
        ("...", ""),
        ("", ""),
        ("caf\u00e9", "caf\u00e9"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_text_is_idempotent() -> None:
    s = "It\u2019s a \u201cwell-known\u201d FACT, isn't it?"
    assert normalize_text(normalize_text(s)) == normalize_text(s) == "it's a well known fact isn't it"


# --- read_text --------------------------------------------------------------


def test_read_text_basic_and_empty_transcript(tmp_path: Path) -> None:
    p = _write(tmp_path / "text", "utt1 hello world\nutt2\nutt3   spaced   out  \n")
    assert read_text(p) == {"utt1": "hello world", "utt2": "", "utt3": "spaced   out"}


def test_read_text_duplicate_id(tmp_path: Path) -> None:
    p = _write(tmp_path / "text", "utt1 a\nutt2 b\nutt1 c\n")
    with pytest.raises(ValueError, match=rf"^{p}:3: duplicate"):
        read_text(p)


def test_read_text_line_without_id(tmp_path: Path) -> None:
    p = _write(tmp_path / "text", "utt1 a\n\nutt2 b\n")
    with pytest.raises(ValueError, match=rf"^{p}:2: "):
        read_text(p)


# --- score_texts ------------------------------------------------------------


def test_sub_and_del() -> None:
    r = score_texts({"u1": "the cat sat on the mat"}, {"u1": "the cat sit on mat"})
    assert (r.sub, r.dele, r.ins, r.n_ref_words, r.n_utts) == (1, 1, 0, 6, 1)
    assert r.wer == pytest.approx(100 * 2 / 6)
    assert round(r.wer, 2) == 33.33
    (d,) = r.details
    assert d.uttid == "u1" and d.n_errors == 2
    assert format_alignment(d.ops) == ("the cat SAT on THE mat", "the cat SIT on *** mat")


def test_insertion() -> None:
    r = score_texts({"u1": "hello world"}, {"u1": "hello big world"})
    assert (r.sub, r.dele, r.ins) == (0, 0, 1)
    assert r.wer == pytest.approx(50.0)
    assert format_alignment(r.details[0].ops) == ("hello *** world", "hello BIG world")


def test_normalisation_applied_before_scoring() -> None:
    r = score_texts({"u1": "Don\u2019t stop, well-known!"}, {"u1": "don't STOP well known"})
    assert r.wer == 0.0 and r.cer == 0.0
    assert r.n_ref_words == 4


def test_cer_hand_computed() -> None:
    # "abcd" vs "abxd": 1 substitution over 4 characters.
    r = score_texts({"u1": "abcd"}, {"u1": "abxd"})
    assert r.cer == pytest.approx(25.0)
    assert (r.char_sub, r.char_dele, r.char_ins, r.n_ref_chars) == (1, 0, 0, 4)
    # Spaces count as characters: "ab cd" vs "abcd" is 1 deletion over 5.
    r = score_texts({"u1": "ab cd"}, {"u1": "abcd"})
    assert r.cer == pytest.approx(20.0)
    assert r.cer == pytest.approx(100 * jiwer.cer("ab cd", "abcd"))


def test_corpus_level_pooling() -> None:
    # WER pools errors over all reference words (not a mean of per-utt WERs).
    r = score_texts({"a": "one two three four", "b": "five"}, {"a": "one two three four", "b": "six"})
    assert r.wer == pytest.approx(100 * 1 / 5)


def test_missing_hyp_scored_as_deletions() -> None:
    r = score_texts({"u1": "a b c", "u2": "d e"}, {"u1": "a b c"})
    assert r.n_missing_hyp == 1
    assert (r.sub, r.dele, r.ins, r.n_ref_words) == (0, 2, 0, 5)
    assert r.wer == pytest.approx(40.0)
    u2 = next(d for d in r.details if d.uttid == "u2")
    assert u2.missing_hyp and u2.hyp == ""


def test_empty_hyp_line_is_all_deletions() -> None:
    r = score_texts({"u1": "a b"}, {"u1": ""})
    assert r.n_missing_hyp == 0
    assert r.dele == 2 and r.wer == pytest.approx(100.0) and r.cer == pytest.approx(100.0)


def test_extra_hyp_counted_and_ignored() -> None:
    r = score_texts({"u1": "a b"}, {"u1": "a b", "zzz": "lots of extra words"})
    assert r.n_extra_hyp == 1
    assert r.wer == 0.0 and r.ins == 0 and r.n_utts == 1


def test_empty_reference_skipped() -> None:
    r = score_texts({"u1": "a b", "u2": "", "u3": "?!"}, {"u1": "a b", "u2": "x", "u3": "y"})
    assert r.n_empty_ref == 2
    assert r.n_utts == 1 and r.wer == 0.0 and r.ins == 0
    assert [d.uttid for d in r.details] == ["u1"]


def test_nothing_to_score_raises() -> None:
    with pytest.raises(ValueError, match="no non-empty reference"):
        score_texts({"u1": "..."}, {"u1": "x"})


# --- write_result / write_results_md ----------------------------------------


def test_write_result(tmp_path: Path) -> None:
    ref = {"u2": "the cat sat on the mat", "u1": "all good here", "u3": "hello world"}
    hyp = {"u2": "the cat sit on mat", "u1": "all good here", "u3": "hello big world", "x": "extra"}
    r = score_texts(ref, hyp)
    assert isinstance(r, ScoreResult)
    out = tmp_path / "decode" / "result.txt"
    write_result(r, out, ref_name="data/test/text", hyp_name="exp/x/text")
    text = out.read_text(encoding="utf-8")
    # 1 sub + 1 del + 1 ins over 6 + 3 + 2 = 11 reference words.
    assert "%WER 27.27 [ 3 / 11, 1 ins, 1 del, 1 sub ]" in text
    assert "%CER " in text
    assert "#utts: 3 scored" in text
    assert "#missing hyp: 0" in text and "#extra hyp: 1" in text
    # Only utterances with errors, sorted by id.
    assert "(u1)" not in text
    assert text.index("(u2)") < text.index("(u3)")
    assert "REF: the cat SAT on THE mat\nHYP: the cat SIT on *** mat" in text
    assert "REF: hello *** world\nHYP: hello BIG world" in text
    assert [p.name for p in out.parent.iterdir()] == ["result.txt"]  # no temp file left


def test_write_results_md(tmp_path: Path) -> None:
    counts = {"n_ref_words": 80, "sub": 6, "dele": 2, "ins": 2}  # 10 errors in 80 words: 12.5 %
    rows = [
        {"set": "dev", "n_utts": 10, "wer": 12.5, "cer": 5.0, "model": "base | lora", "date": "2024-01-02",
         "n_utts_with_errors": 4, "encoder_uer": 7.25, **counts},
        {"set": "test", "n_utts": 20, "wer": 0, "cer": 0, "model": "base", "date": "2024-01-02",
         "n_ref_words": 100, "sub": 0, "dele": 0, "ins": 0},  # an older summary: no sentence-error count
    ]
    out = tmp_path / "RESULTS.md"
    out.write_text("old content\n")
    env = {"date": "2024-01-02T10:00:00+00:00", "git commit": "abc", "torch": "2.13.0+cpu", "CPU": "x, 2 cores"}
    write_results_md(out, rows, title="mini_en", notes="## Notes\n\nSome *notes*.", env=env)
    text = out.read_text(encoding="utf-8")
    assert "old content" not in text
    assert text.startswith("# mini_en\n\n## Environment\n\n- date: `2024-01-02T10:00:00+00:00`\n- git commit: `abc`\n")
    assert "| set | Snt | Wrd | Corr | Sub | Del | Ins | Err | S.Err | CER | encoder UER | model | date |" in text
    assert "| dev | 10 | 80 | 90.0 | 7.5 | 2.5 | 2.5 | 12.5 | 40.0 | 5.0 | 7.2 | base \\| lora | 2024-01-02 |" in text
    assert "| test | 20 | 100 | 100.0 | 0.0 | 0.0 | 0.0 | 0.0 | - | 0.0 | - | base | 2024-01-02 |" in text
    assert text.index("| dev ") < text.index("| test ") < text.index("## Notes")
    assert text.rstrip().endswith("Some *notes*.")


def test_write_results_md_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wer"):
        row = {"set": "a", "n_utts": 1, "cer": 1.0, "model": "m", "date": "d", "n_ref_words": 3, "sub": 0,
               "dele": 0, "ins": 0}
        write_results_md(tmp_path / "R.md", [row], title="t", env={})


# --- CLI --------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "tasu.bin.score", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_end_to_end(tmp_path: Path) -> None:
    ref_a = _write(tmp_path / "data" / "test" / "text", "u1 The cat sat on the mat.\nu2 Hello world\n")
    hyp_a = _write(tmp_path / "exp" / "decode_test" / "text", "u1 the cat sit on mat\nu2 hello world\n")
    ref_b = _write(tmp_path / "data" / "dev" / "text", "v1 a b c d\nv2 e f\n")
    hyp_b = _write(tmp_path / "exp" / "decode_dev" / "text", "v1 a b c d\n")  # v2 missing

    out_a = tmp_path / "exp" / "decode_test" / "result.txt"
    proc = _cli("--ref", str(ref_a), "--hyp", str(hyp_a), "--out", str(out_a))
    assert proc.returncode == 0, proc.stderr
    # 2 errors over 8 words; CER: 1 sub ("a"->"i") + 4 del ("the ") over 22 + 11 chars.
    assert proc.stdout.strip() == f"test: WER 25.00 % CER {100 * 5 / 33:.2f} % (2 utts)"
    assert "%WER 25.00 [ 2 / 8, 0 ins, 1 del, 1 sub ]" in out_a.read_text()
    summary = json.loads((out_a.parent / "score.json").read_text())
    assert summary["set"] == "test" and summary["n_utts"] == 2 and summary["wer"] == 25.0

    out_b = tmp_path / "exp" / "decode_dev" / "result.txt"
    json_b = tmp_path / "elsewhere.json"
    proc = _cli("--ref", str(ref_b), "--hyp", str(hyp_b), "--out", str(out_b), "--json", str(json_b))
    assert proc.returncode == 0, proc.stderr
    # 2 of 6 words deleted; CER: 3 of 7 + 3 chars ("e f") deleted.
    assert proc.stdout.strip() == "dev: WER 33.33 % CER 30.00 % (2 utts)"
    assert "1 missing hyp" in proc.stderr
    assert json.loads(json_b.read_text())["n_missing_hyp"] == 1
    assert not (out_b.parent / "score.json").exists()
    (out_b.parent / "score.json").write_text(json_b.read_text())

    md = tmp_path / "exp" / "RESULTS.md"
    proc = _cli(
        "--results-md", str(md),
        "--decode-dirs", str(out_a.parent), str(out_b.parent),
        "--model", "whisper-small + lora",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| test ") or line.startswith("| dev ")]
    assert len(rows) == 2
    # sclite's columns: 8 words, 1 sub + 1 del; u1 wrong, u2 right / 6 words, v2's two deleted
    assert rows[0].startswith("| test | 2 | 8 | 75.0 | 12.5 | 12.5 | 0.0 | 25.0 | 50.0 | ")
    assert "| whisper-small + lora |" in rows[0]
    assert rows[1].startswith("| dev | 2 | 6 | 66.7 | 0.0 | 33.3 | 0.0 | 33.3 | 50.0 | 30.0 | - | "
                              "whisper-small + lora |")
    assert "- git commit: `" in text and "- torch: `" in text  # the environment block

    # the encoder's own unit error rate: units scored as given (no normalisation), its own column
    ref_u = _write(tmp_path / "dump" / "units", "u1 ð ə <wb> k æ t\nu2 h ɛ l oʊ\n")
    hyp_u = _write(tmp_path / "dump" / "units_hyp", "u1 ð ə <wb> k ɑ t\nu2 h ɛ l oʊ\n")
    proc = _cli("--units", "--ref", str(ref_u), "--hyp", str(hyp_u), "--out", str(out_a.parent / "encoder_result.txt"),
                "--json", str(out_a.parent / "encoder_score.json"), "--set-name", "test")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "test: UER 10.00 % (2 utts)"  # 1 of 10 units
    assert "%UER 10.00 [ 1 / 10, 0 ins, 0 del, 1 sub ]" in (out_a.parent / "encoder_result.txt").read_text()
    proc = _cli("--results-md", str(md), "--decode-dirs", str(out_a.parent), "--model", "m")
    assert "| test | 2 | 8 | 75.0 | 12.5 | 12.5 | 0.0 | 25.0 | 50.0 | " in md.read_text()
    assert " | 10.0 | m |" in md.read_text()


def test_results_md_keeps_rows_whose_decodes_are_gone(tmp_path: Path) -> None:
    """A RESULTS.md regenerated on a machine without an earlier model's decode dirs keeps that
    model's rows verbatim; a row the new decodes give again is replaced, not doubled; --fresh
    drops the rest. Task rows likewise, keyed by (set, task, model)."""
    counts = {"n_ref_words": 10, "sub": 1, "dele": 0, "ins": 0, "cer": 2.0, "n_utts": 2, "date": "2026-12-04"}
    old = [{"set": "dev", "model": "w5", "wer": 10.0, **counts}, {"set": "dev", "model": "w6", "wer": 10.0, **counts},
           {"set": "test", "model": "w5", "wer": 10.0, **counts},
           {"set": "slu", "task": "intent", "n_utts": 4, "metric": "accuracy", "value": 75.0, "model": "w5",
            "date": "2026-12-04"}]
    md = tmp_path / "RESULTS.md"
    write_results_md(md, old, title="t", env={})
    before = md.read_text()
    w5_rows = [ln for ln in before.splitlines() if "| w5 |" in ln]
    assert len(w5_rows) == 3
    ref = _write(tmp_path / "data" / "dev" / "text", "u1 a b c d e\nu2 f g h i j\n")
    hyp = _write(tmp_path / "exp" / "w6" / "decode_dev" / "text", "u1 a b c d e\nu2 f g h i j\n")
    proc = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(hyp.parent / "result.txt"))
    assert proc.returncode == 0, proc.stderr
    proc = _cli("--results-md", str(md), "--decode-dirs", str(hyp.parent))
    assert proc.returncode == 0, proc.stderr
    assert "3 kept from before" in proc.stdout
    text = md.read_text()
    assert all(ln in text.splitlines() for ln in w5_rows)                 # verbatim
    w6 = [ln for ln in text.splitlines() if "| w6 |" in ln]
    assert len(w6) == 1 and w6[0].startswith("| dev | 2 | 10 | 100.0 | 0.0 | 0.0 | 0.0 | 0.0 |")
    assert text.index("| dev | 2 | 10 | 90.0") < text.index("| w6 |")       # earlier rows first
    assert "| set | task | #utts |" in text and "| slu | intent |" in text
    proc = _cli("--results-md", str(md), "--decode-dirs", str(hyp.parent), "--fresh")
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    assert "| w5 |" not in text and "| slu |" not in text and "| w6 |" in text


def test_cli_errors(tmp_path: Path) -> None:
    proc = _cli("--ref", "x")
    assert proc.returncode == 2 and "needs --ref, --hyp and --out" in proc.stderr
    proc = _cli()
    assert proc.returncode == 2
    bad = _write(tmp_path / "text", "u1 a\nu1 b\n")
    proc = _cli("--ref", str(bad), "--hyp", str(bad), "--out", str(tmp_path / "r.txt"))
    assert proc.returncode == 1 and "duplicate" in proc.stderr
    proc = _cli("--results-md", str(tmp_path / "R.md"), "--decode-dirs", str(tmp_path), "--model", "m")
    assert proc.returncode == 1 and "score.json" in proc.stderr


def test_cli_help() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0
    assert "--results-md" in proc.stdout and "score.json" in proc.stdout


# --- errors by training count -------------------------------------------------


def test_errors_by_count_hand_computed() -> None:
    from tasu.score import errors_by_count

    result = score_texts({"u": "The cat sat on the mat"}, {"u": "the cat sit on the extra"})
    # alignment: the C, cat C, sat->sit S, on C, the C, mat->extra S
    counts = {"the": 500, "cat": 12, "sat": 3, "on": 200}  # "mat" never seen
    bins = errors_by_count(result, counts)
    assert [(b.label, b.n_words, b.n_wrong) for b in bins] == [
        ("0", 1, 1), ("1-9", 1, 1), ("10-99", 1, 0), ("100+", 3, 0)]
    assert bins[1].error_rate == 100.0 and bins[3].error_rate == 0.0

    result = score_texts({"u": "a b c"}, {"u": "a x b"})  # c deleted, x inserted: insertions in no bin
    bins = errors_by_count(result, {"a": 1, "b": 1, "c": 1}, edges=(0, 2))
    assert [(b.label, b.n_words, b.n_wrong) for b in bins] == [("0-1", 3, 1), ("2+", 0, 0)]
    assert bins[1].error_rate == 0.0  # an empty bin is not a division by zero

    for bad in ((), (1, 10), (0, 10, 10), (0, 5, 2)):
        with pytest.raises(ValueError, match="start at 0 and rise"):
            errors_by_count(result, {}, edges=bad)


def test_errors_by_count_cli(tmp_path: Path, capsys) -> None:
    from tasu.bin.errors_by_count import main as errors_main

    train = _write(tmp_path / "train" / "text", "t1 The cat sat.\nt2 the CAT\nt3 a dog\n")
    ref = _write(tmp_path / "test" / "text", "u1 the cat sat\nu2 a dog barked\n")
    hyp = _write(tmp_path / "decode" / "text", "u1 the cat set\nu2 a dog barked\n")
    out = tmp_path / "decode" / "errors_by_count.md"
    assert errors_main(["--train_text", str(train), "--ref", str(ref), "--hyp", str(hyp),
                        "--edges", "0", "1", "2", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text == capsys.readouterr().out
    assert "(7 words, 5 distinct)" in text  # counted after normalisation: "CAT" and "cat." are "cat"
    # bins: barked (0, right); sat (1, wrong), a, dog (1, right); the, cat (2, right)
    assert "| 0 | 1 | 16.7 % | 0.0 % |" in text
    assert "| 1 | 3 | 50.0 % | 33.3 % |" in text
    assert "| 2+ | 2 | 33.3 % | 0.0 % |" in text

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"t1 fine\nt2 caf\xe9\n")
    assert errors_main(["--train_text", str(bad), "--ref", str(ref), "--hyp", str(hyp)]) == 1
    assert f"{bad}:2" in capsys.readouterr().err
    assert errors_main(["--train_text", str(tmp_path / "none"), "--ref", str(ref), "--hyp", str(hyp)]) == 1


# --- U-WER / B-WER (contextual biasing) ------------------------------------------


def test_score_biased_hand_computed() -> None:
    from tasu.score import score_biased

    ref, hyp = {"u1": "the cat sat on the mat"}, {"u1": "the cap sat on mat mat"}
    # alignment: the C, cat->cap S, sat C, on C, the->mat S, mat C (2 errors / 6 words)
    b = score_biased(ref, hyp, {"u1": {"cat"}})
    # biased: cat (1 word, substituted): 1 / 1; unbiased: the sat on the mat (5 words), the->mat: 1 / 5
    assert (b.n_ref_b, b.sub_b, b.dele_b, b.ins_b) == (1, 1, 0, 0)
    assert (b.n_ref_u, b.sub_u, b.dele_u, b.ins_u) == (5, 1, 0, 0)
    assert b.b_wer == pytest.approx(100.0) and b.u_wer == pytest.approx(20.0)
    assert b.wer == pytest.approx(100 * 2 / 6)
    assert str(b) == "WER 33.33 % U-WER 20.00 % B-WER 100.00 % (5 U / 1 B words)"
    assert b.table().split("\n") == ["%WER 33.33 [ 2 / 6, 0 ins, 0 del, 2 sub ]",
                                     "%U-WER 20.00 [ 1 / 5, 0 ins, 0 del, 1 sub ]",
                                     "%B-WER 100.00 [ 1 / 1, 0 ins, 0 del, 1 sub ]"]
    # the bias words are normalised as the texts are: "The," is "the", both of them biased;
    # biased: the, the (the->mat wrong): 1 / 2; unbiased: cat sat on mat (cat->cap wrong): 1 / 4
    b = score_biased(ref, hyp, {"u1": ["The,"]})
    assert (b.n_ref_b, b.sub_b, b.n_ref_u, b.sub_u) == (2, 1, 4, 1)
    assert b.b_wer == pytest.approx(50.0) and b.u_wer == pytest.approx(25.0)
    # a bias word that normalises to two words makes both biased
    b = score_biased({"u": "a well known fact"}, {"u": "a well known fact"}, {"u": ["Well-Known"]})
    assert (b.n_ref_b, b.n_ref_u, b.b_wer, b.u_wer) == (2, 2, 0.0, 0.0)


def test_score_biased_insertions() -> None:
    from tasu.score import score_biased

    # "anna" inserted, and "anna" is biased: a biased error. B: anna + the insertion: 1 / 1;
    # U: call now, no error: 0 / 2; WER 1 / 3
    b = score_biased({"u": "call anna now"}, {"u": "call anna anna now"}, {"u": ["anna"]})
    assert (b.ins_b, b.ins_u, b.n_ref_b, b.n_ref_u) == (1, 0, 1, 2)
    assert (b.b_wer, b.u_wer) == (pytest.approx(100.0), 0.0) and b.wer == pytest.approx(100 / 3)
    # "right" inserted, not biased: an unbiased error. U: 1 / 2 (call now); B: 0 / 1
    b = score_biased({"u": "call anna now"}, {"u": "call anna right now"}, {"u": ["anna"]})
    assert (b.ins_b, b.ins_u) == (0, 1)
    assert (b.b_wer, b.u_wer) == (0.0, pytest.approx(50.0))
    # the bias set is the utterance's own: "anna" is biased in u1 only
    b = score_biased({"u1": "call now", "u2": "call now"}, {"u1": "call anna now", "u2": "call anna now"},
                     {"u1": ["anna"]})
    assert (b.ins_b, b.ins_u, b.n_ref_b, b.n_ref_u) == (1, 1, 0, 4)


def test_score_biased_no_bias_words_in_ref() -> None:
    from tasu.score import score_biased

    b = score_biased({"u": "a b c"}, {"u": "a x c"}, {"u": ["zebra"]})  # b->x: 1 / 3 words, none biased
    assert (b.n_ref_b, b.n_ref_u) == (0, 3)
    assert b.b_wer is None and b.u_wer == pytest.approx(100 / 3) and b.wer == b.u_wer
    assert str(b) == "WER 33.33 % U-WER 33.33 % B-WER - (3 U / 0 B words)"
    assert b.table().split("\n")[2] == "%B-WER - [ 0 / 0, 0 ins, 0 del, 0 sub ]"
    b = score_biased({"u": "a b c"}, {"u": "a b c"}, {})  # no list at all: every word unbiased
    assert (b.n_ref_b, b.n_ref_u, b.b_wer, b.u_wer) == (0, 3, None, 0.0)


def test_score_biased_wer_is_score_texts_wer() -> None:
    from tasu.score import score_biased, split_by_bias

    ref = {"u1": "Call Anna now", "u2": "anna b", "u3": "...", "u4": "the cat sat on the mat"}
    hyp = {"u1": "call ana now please", "u3": "x", "u4": "the cap sat on mat mat", "zz": "anna anna"}
    bias = {"u1": ["anna"], "u2": ["ANNA"], "u4": ["cat", "mat"], "zz": ["anna"]}
    b = score_biased(ref, hyp, bias)
    r = score_texts(ref, hyp)
    assert b.wer == r.wer  # the same alignment, the same arithmetic: equal, not just close
    assert (b.n_ref_words, b.n_utts, b.n_missing_hyp, b.n_extra_hyp, b.n_empty_ref) == (11, 3, 1, 1, 1)
    assert split_by_bias(r, bias) == b
    # u1: anna->ana S (B), please I (U); u2 missing: anna D (B), b D (U); u3 empty ref: skipped;
    # u4: cat->cap S (B), the->mat S (U), mat C (B); zz: not in ref, ignored.
    # B: anna, anna, cat, mat = 4 words, 3 errors; U: call now b the sat on the = 7 words, 3 errors
    assert (b.n_ref_b, b.sub_b, b.dele_b, b.ins_b) == (4, 2, 1, 0)
    assert (b.n_ref_u, b.sub_u, b.dele_u, b.ins_u) == (7, 1, 1, 1)
    assert b.b_wer == pytest.approx(75.0) and b.u_wer == pytest.approx(100 * 3 / 7)
    assert r.wer == pytest.approx(100 * 6 / 11)


def _bias_fixture(tmp_path: Path) -> dict[str, Path]:
    # training counts: the 4, cat 3, dog 2, sat 1, mat 1: with --common 3 the common words are the, cat, dog
    lines = ["The cat sat.", "the CAT dog", "the cat dog the mat"]
    lexicon = ["the", "cat", "dog", "sat", "mat", "on", "zebra", "ice-cream"] + [f"w{i:02d}" for i in range(20)]
    return {
        "train": _write(tmp_path / "train.txt", "".join(f"{s}\n" for s in lines)),
        "train_ids": _write(tmp_path / "train_ids.txt", "".join(f"mat-{i} {s}\n" for i, s in enumerate(lines))),
        "text": _write(tmp_path / "text", "u1 The cat sat on the mat, mat\nu2 The dog\nu3 Zebra, zebra!\nu4 the dog\n"),
        "lexicon": _write(tmp_path / "lexicon.txt", "".join(f"{w}\tx y\n" for w in lexicon)),
    }


def _bias_lists(out: Path) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in out.read_text(encoding="utf-8").splitlines()}


def test_make_bias_lists(tmp_path: Path) -> None:
    from tasu.bin.make_bias_lists import main as make_main

    f = _bias_fixture(tmp_path)

    def make(out: str, *extra: str, train: str = "train", text: str = "text") -> dict[str, list[str]]:
        assert make_main(["--text", str(f[text]), "--train_text", str(f[train]), "--lexicon", str(f["lexicon"]),
                          "--common", "3", "--distractors", "5", "--out", str(tmp_path / out), *extra]) == 0
        return _bias_lists(tmp_path / out)

    lists = make("bias", "--ref_rare_out", str(tmp_path / "rare"))
    # reference words outside {the, cat, dog}, once each, in order: u1 sat on mat; u2 none; u3 zebra
    assert (tmp_path / "rare").read_text() == "u1 sat on mat\nu2\nu3 zebra\nu4\n"
    assert [lists[u][:n] for u, n in (("u1", 3), ("u2", 0), ("u3", 1))] == [["sat", "on", "mat"], [], ["zebra"]]
    # distractors: 5, distinct, from the lexicon's rare single words (not the, cat, dog, ice-cream),
    # none of them in the reference
    rare_lexicon = {"sat", "mat", "on", "zebra"} | {f"w{i:02d}" for i in range(20)}
    refs = {"u1": {"the", "cat", "sat", "on", "mat"}, "u2": {"the", "dog"}, "u3": {"zebra"}, "u4": {"the", "dog"}}
    n_rare = {"u1": 3, "u2": 0, "u3": 1, "u4": 0}
    for u, words in lists.items():
        d = words[n_rare[u]:]
        assert len(d) == len(set(d)) == 5 and set(d) <= rare_lexicon - refs[u], (u, d)
    assert list(lists) == ["u1", "u2", "u3", "u4"]
    assert lists["u2"] != lists["u4"]  # the same reference, another utterance: other draws
    # more distractors asked for than there are: every rare lexicon word not in the reference
    for u, words in make("all", "--distractors", "30").items():
        assert sorted(words[n_rare[u]:]) == sorted(rare_lexicon - refs[u]), u
    # reproducible; another seed draws others; an utterance's list does not depend on the others
    assert make("again") == lists
    assert make("seed1", "--seed", "1") != lists
    _write(tmp_path / "text_u3_first", "u3 Zebra, zebra!\nu1 The cat sat on the mat, mat\n")
    f["text_u3_first"] = tmp_path / "text_u3_first"
    assert make("reordered", text="text_u3_first") == {u: lists[u] for u in ("u1", "u3")}
    # the same text as a Kaldi text with ids, in .xz: the same lists
    import lzma

    f["train_xz"] = tmp_path / "train.text.xz"
    f["train_xz"].write_bytes(lzma.compress(f["train_ids"].read_bytes()))
    assert make("xz", "--train_text_has_ids", train="train_xz") == lists
    # without --train_text_has_ids the ids are words: "mat-0" is "mat 0", mat counts 4 and is common
    # (the 4, mat 4, cat 3), so u1's rare words are sat on
    assert make("xz_ids_counted", train="train_xz")["u1"][:2] == ["sat", "on"]


def test_make_bias_lists_errors(tmp_path: Path, capsys) -> None:
    import lzma

    from tasu.bin.make_bias_lists import main as make_main

    f = _bias_fixture(tmp_path)
    bad = tmp_path / "bad.text.xz"
    bad.write_bytes(lzma.compress(b"fine line\ncaf\xe9\n"))
    args = ["--text", str(f["text"]), "--lexicon", str(f["lexicon"]), "--out", str(tmp_path / "o")]
    assert make_main([*args, "--train_text", str(bad)]) == 1
    assert f"{bad}:2: not valid UTF-8" in capsys.readouterr().err
    notxz = _write(tmp_path / "plain.xz", "not xz\n")
    assert make_main([*args, "--train_text", str(notxz)]) == 1
    assert f"{notxz}: not a valid .xz" in capsys.readouterr().err
    lex = _write(tmp_path / "badlex", "the\tx\nno tab here\n")
    assert make_main(["--text", str(f["text"]), "--lexicon", str(lex), "--train_text", str(f["train"]),
                      "--out", str(tmp_path / "o")]) == 1
    assert f"{lex}:2:" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_score_cli_bias_lists(tmp_path: Path, capsys) -> None:
    from tasu.bin.score import main as score_main

    ref = _write(tmp_path / "data" / "test" / "text", "u1 The cat sat on the mat\nu2 call anna now\n")
    hyp = _write(tmp_path / "decode" / "text", "u1 the cap sat on mat mat\nu2 call anna anna now\n")
    lists = _write(tmp_path / "bias", "u1 Cat zebra\nu9 anna\n")  # u2 absent: no bias words; u9 not in ref
    out = tmp_path / "decode" / "result.txt"
    assert score_main(["--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--bias_lists", str(lists)]) == 0
    io = capsys.readouterr()
    # u1 as in test_score_biased_hand_computed (B 1/1, U 1/5); u2: all unbiased, anna inserted: U 1/3.
    # WER 3/9; U-WER 2/8; B-WER 1/1. CER: u1 t->p and "the"->"mat" (4 sub), u2 "anna " inserted
    # (5 ins): 9 / (22 + 13) chars
    assert io.out.splitlines() == [f"test: WER 33.33 % CER {100 * 9 / 35:.2f} % (2 utts)",
                                   "test: WER 33.33 % U-WER 25.00 % B-WER 100.00 % (8 U / 1 B words)"]
    assert "1 lists of utterances not in" in io.err and "'u9'" in io.err
    text = out.read_text()
    assert "%WER 33.33 [ 3 / 9, 1 ins, 0 del, 2 sub ]\n" in text  # the header as without --bias_lists
    assert (f"#empty ref: 0 (skipped)\nBias lists: {lists} (2 utts, 1 not in ref)\n"
            "%U-WER 25.00 [ 2 / 8, 1 ins, 0 del, 1 sub ]\n%B-WER 100.00 [ 1 / 1, 0 ins, 0 del, 1 sub ]\n\n"
            "id: (u1)") in text
    summary = json.loads((out.parent / "score.json").read_text())
    assert (summary["u_wer"], summary["b_wer"], summary["n_ref_u"], summary["n_ref_b"], summary["ins_u"]) == (
        25.0, 100.0, 8, 1, 1)
    assert summary["n_bias_lists_not_in_ref"] == 1 and summary["wer"] == round(100 * 3 / 9, 4)


def test_score_cli_bias_lists_errors(tmp_path: Path, capsys) -> None:
    from tasu.bin.score import main as score_main

    ref = _write(tmp_path / "text", "u1 a b\nu2 c\n")
    args = ["--ref", str(ref), "--hyp", str(ref), "--out", str(tmp_path / "r" / "result.txt")]
    lists = tmp_path / "bias"
    for content, line in ((b"u1 a\nu2 c\nu1 b\n", 3), (b"u1 a\nu2 \xff\n", 2)):   # a repeated id; not UTF-8
        lists.write_bytes(content)
        assert score_main([*args, "--bias_lists", str(lists)]) == 1
        assert f"{lists}:{line}: " in capsys.readouterr().err
    # read as tasu-infer --hotwords_per_utt reads them: blank lines and comments skipped
    from tasu.bin.score import read_bias_lists
    from tasu.hotwords import read_utt_hotwords

    lists.write_text("# rare words\nu1 a\n\n  u2 c d\nu3\n")
    assert read_bias_lists(lists) == {"u1": ["a"], "u2": ["c", "d"], "u3": []}
    assert {u: list(w) for u, w in read_utt_hotwords(lists, 1.0).items()} == read_bias_lists(lists)
    assert not (tmp_path / "r" / "result.txt").exists()  # nothing written before the lists were read
    lists = _write(tmp_path / "bias", "u1 a\n")
    assert score_main([*args, "--bias_lists", str(lists), "--metric", "accuracy"]) == 1
    assert "--bias_lists" in capsys.readouterr().err
