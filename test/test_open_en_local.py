"""open_en's data builders on tiny fixtures, and the shipped text and speech sets themselves."""
import gzip
import io
import lzma
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tasu.textnorm import HeldoutFilter, heldout_keys, normalize_text

TOP = Path(__file__).resolve().parents[1]
RECIPE = TOP / "egs" / "open_en"

BOOK = """The Project Gutenberg EBook of A Test

*** START OF THIS PROJECT GUTENBERG EBOOK A TEST ***

CHAPTER I

It was the 3rd of May in 1850, and the rain fell on the old town all day.
Mr. Brown walked to the mill. He said that the mill was closed.

For the twentieth time that evening the two men shook hands and parted.
The rain fell on the old town again. The mill was closed again today.
Zyxwvut appeared once in the old town.

*** END OF THIS PROJECT GUTENBERG EBOOK A TEST ***
"""


def git_repo(root: Path, files: dict[str, bytes], name: str = "owner+books") -> str:
    """A mirror like the search tool's fetch leaves it: <root>/owner+name/repo with one commit."""
    repo = root / name / "repo"
    repo.mkdir(parents=True)
    for path, data in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(data)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(root), "PATH": "/usr/bin:/bin"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def build(tmp_path, files, sources, heldout=("For the twentieth time that evening the two men shook hands.",),
          min_word_count=1):
    commit = git_repo(tmp_path / "mirror", files)
    keys = tmp_path / "heldout.keys"
    keys.write_text("# test\n" + "\n".join(sorted(set().union(*(heldout_keys(s) for s in heldout)))) + "\n")
    lines = ["seed: 1", "min_words: 3", "max_words: 35", f"min_word_count: {min_word_count}", "n_dev: 1",
             f"heldout: {keys}",
             "sources:"]
    for s in sources:
        lines.append("  - {" + ", ".join(f"{k}: {v}" for k, v in {**s, "repo": "owner/books",
                                                                   "commit": commit}.items()) + "}")
    cfg = tmp_path / "text.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, str(RECIPE / "local" / "build_text.py"), "--config", str(cfg),
                          "--mirror", str(tmp_path / "mirror"), "--out", str(out)], capture_output=True, text=True)
    return res, out


def table(path: Path) -> dict[str, str]:
    return dict(l.split(" ", 1) for l in lzma.decompress(path.read_bytes()).decode().splitlines())


def test_build_text_rules_and_heldout_filter(tmp_path):
    res, out = build(tmp_path, {"book.txt": BOOK.encode()},
                     [{"name": "book", "format": "gutenberg", "path": "book.txt"}])
    assert res.returncode == 0, res.stderr
    train, dev = table(out / "train.text.xz"), table(out / "dev.text.xz")
    sents = set(train.values()) | set(dev.values())
    assert len(dev) == 1 and not set(train) & set(dev)
    # numbers read out, abbreviations kept in one sentence, the heading gone
    assert "It was the third of May in eighteen fifty, and the rain fell on the old town all day." in sents
    assert "Mr. Brown walked to the mill." in sents
    assert not any("CHAPTER" in s for s in sents)
    # the planted test sentence is removed, and counted
    assert not any("twentieth time" in s for s in sents)
    rows = [l.split("\t") for l in (out / "SOURCES.tsv").read_text().splitlines()]
    row = dict(zip(rows[0], rows[1]))
    assert row["drop_heldout"] == "1" and row["drop_caps"] == "1" and row["drop_rare_word"] == "0"
    assert int(row["train"]) + int(row["dev"]) == len(sents) == 6 and row["commit_or_package"] != ""
    assert "drop_heldout 1" in (out / "build.log").read_text()


def test_build_text_rare_words(tmp_path):
    book = BOOK.split("CHAPTER I")[0] + ("The rain fell on the old town.\n\nOn the old town the rain fell.\n\n"
                                         "Zyxwvut fell on the old town.\n\n*** END OF IT ***\n")
    res, out = build(tmp_path, {"book.txt": book.encode()}, [{"name": "book", "format": "gutenberg",
                                                              "path": "book.txt"}], min_word_count=2)
    assert res.returncode == 0, res.stderr
    sents = set(table(out / "train.text.xz").values()) | set(table(out / "dev.text.xz").values())
    assert sents == {"The rain fell on the old town.", "On the old town the rain fell."}
    assert "drop_rare_word 1" in (out / "build.log").read_text()


def test_build_text_bad_sources(tmp_path):
    bad = "\n*** START OF X ***\nCaf\xe9 au lait is here today.\n*** END OF X ***\n".encode("latin-1")
    res, out = build(tmp_path, {"book.txt": bad, "plain.txt": b"no markers at all\n"},
                     [{"name": "book", "format": "gutenberg", "path": "book.txt"}])
    assert res.returncode == 1 and "book.txt:3: not valid UTF-8 (byte 0xe9)" in res.stderr
    assert not (out / "train.text.xz").exists()                       # nothing half-written
    res, _ = build(tmp_path / "b", {"plain.txt": b"no markers at all\n"},
                   [{"name": "book", "format": "gutenberg", "path": "plain.txt"}])
    assert res.returncode == 1 and "plain.txt: no Project Gutenberg START/END markers" in res.stderr
    res, _ = build(tmp_path / "c", {"plain.txt": b"x\n"}, [{"name": "book", "format": "gutenberg", "path": "gone.txt"}])
    assert res.returncode == 1 and "gone.txt" in res.stderr
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("c/a.txt", "One line of text here.\n")
    res, _ = build(tmp_path / "d", {"c.zip": zbuf.getvalue()},
                   [{"name": "c", "format": "paragraphs", "path": "c.zip", "members": '"c/none*"'}])
    assert res.returncode == 1 and "no member matches 'c/none*'" in res.stderr


def run_prep(tmp_path, *args):
    return subprocess.run([sys.executable, str(RECIPE / "local" / "prepare_data.py"), "--data", str(tmp_path / "data"),
                           *args], cwd=RECIPE, capture_output=True, text=True)


def test_asterisk_rules(tmp_path):
    sounds = tmp_path / "sounds"
    (sounds / "digits").mkdir(parents=True)
    (sounds / "silence").mkdir()
    sr = 8000
    tone = (0.1 * np.sin(np.arange(sr) / 5)).astype(np.float32)
    for name in ("press-1", "digits/2", "beep", "orphan", "silence/1"):
        sf.write(sounds / f"{name}.wav", tone, sr)
    gz = tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(gz, "wt") as f:
        f.write("; Core sounds\n\npress-1: Press 1, then #, or * to cancel.\ndigits/2: 2\n"
                "beep: [a beep tone]\nno-audio: Goodbye.\nsilence/1: (1 second of silence)\n")
    res = run_prep(tmp_path, "--sets", "asterisk", "--asterisk_sounds", str(sounds), "--asterisk_text", str(gz))
    assert res.returncode == 0, res.stderr
    d = tmp_path / "data" / "asterisk"
    text = dict(l.split(" ", 1) for l in (d / "text").read_text().splitlines())
    assert text == {"asterisk-digits_2": "two", "asterisk-press-1": "Press one, then pound, or star to cancel."}
    skipped = (d / "skipped").read_text()
    assert "beep" in skipped and "no speech" in skipped
    assert "no-audio" in skipped and f"{gz}:6: transcript without a wav" in skipped
    assert "orphan" in skipped and "wav without a transcript" in skipped
    assert "silence/1" in skipped
    assert "kept 2, no_speech 2, no_transcript 1, no_wav 1" in res.stderr
    with gzip.open(gz, "wt") as f:
        f.write("press-1 without a colon\n")
    res = run_prep(tmp_path, "--sets", "asterisk", "--asterisk_sounds", str(sounds), "--asterisk_text", str(gz))
    assert res.returncode != 0 and f"{gz}:1: expected '<name>: <transcript>'" in res.stderr


def test_arctic_sets_are_real_and_split_by_prompt(tmp_path):
    res = run_prep(tmp_path, "--sets", "arctic_dev", "arctic_test")
    assert res.returncode == 0, res.stderr
    sets = {}
    for s in ("arctic_dev", "arctic_test"):
        d = tmp_path / "data" / s
        text = dict(l.split(" ", 1) for l in (d / "text").read_text().splitlines())
        wav = dict(l.split(" ", 1) for l in (d / "wav.scp").read_text().splitlines())
        assert text.keys() == wav.keys()
        sets[s] = text
        info = sf.info(next(iter(wav.values())))
        assert info.samplerate == 16000 and info.channels == 1
    assert len(sets["arctic_dev"]) == 150 and len(sets["arctic_test"]) == 400
    prompts = lambda s: {normalize_text(t) for t in sets[s].values()}  # noqa: E731
    assert not prompts("arctic_dev") & prompts("arctic_test")
    assert "commit: c51cb971036a127359b43c621f26ca5081eab13e" in (RECIPE / "db" / "arctic_cathy" / "SOURCE").read_text()


def test_arctic_subset_builder_splits_by_prompt_and_keeps_the_rest_apart(tmp_path):
    """make_arctic_subset.py on a tiny mirror in the dataset's layout: latest take per prompt,
    no prompt in two parts, the paired rest in its own dir (--train_out) with its own SOURCE,
    orphans counted; a re-run without --train_out leaves dev/test as they were."""
    sr = 48000
    tone = (0.1 * np.sin(np.arange(sr // 4) / 7)).astype(np.float32)
    stereo = np.stack([tone, tone], axis=1)
    files = {}
    for i in range(1, 7):
        for ts in ((100, 200) if i == 1 else (100,)):
            buf = io.BytesIO()
            sf.write(buf, stereo, sr, format="WAV")
            files[f"data/arctic_a{i:04d}_{ts}.wav"] = buf.getvalue()
            files[f"data/arctic_a{i:04d}_{ts}.txt"] = f"Prompt number {i} take {ts}.\n".encode()
    files["data/arctic_a0009_100.wav"] = files["data/arctic_a0001_100.wav"]   # no transcript
    commit = git_repo(tmp_path / "mirror", files, name="rhasspy+dataset-voice-cathy")
    script = RECIPE / "local" / "make_arctic_subset.py"
    out, rest = tmp_path / "db", tmp_path / "db_train"
    args = [sys.executable, str(script), "--mirror", str(tmp_path / "mirror"), "--out", str(out),
            "--n_test", "2", "--n_dev", "1"]
    res = subprocess.run([*args, "--train_out", str(rest)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    parts = {p: dict(l.split(" ", 1) for l in (d / f"{p}.text").read_text().splitlines())
             for p, d in (("test", out), ("dev", out), ("train", rest))}
    assert [len(parts[p]) for p in ("test", "dev", "train")] == [2, 1, 3]
    assert len(set().union(*(set(t) for t in parts.values()))) == 6          # six prompts, each once
    assert {p.stem for p in (rest / "flac").glob("*.flac")} == set(parts["train"])
    assert {p.stem for p in (out / "flac").glob("*.flac")} == set(parts["test"]) | set(parts["dev"])
    took = {**parts["test"], **parts["dev"], **parts["train"]}["cathy-arctic_a0001"]
    assert took.strip() == "Prompt number 1 take 200."                        # the latest take
    info = sf.info(next((rest / "flac").glob("*.flac")))
    assert info.samplerate == 16000 and info.channels == 1
    source, rest_source = (out / "SOURCE").read_text(), (rest / "SOURCE").read_text()
    assert "(train)" not in source and "train " not in source.splitlines()[-1]
    assert "no_txt 1" in source and "train 3" in rest_source.splitlines()[-1]
    assert f"commit: {commit}" in rest_source and f"commit: {commit}" in source
    before = {p: (out / p).read_bytes() for p in ("SOURCE", "dev.text", "test.text")}
    flac = sorted((out / "flac").glob("*.flac"))[0]
    audio = flac.read_bytes()
    flac.unlink()                                     # re-made by the re-run: the same bytes (sox -R)
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert before == {p: (out / p).read_bytes() for p in ("SOURCE", "dev.text", "test.text")}
    assert flac.read_bytes() == audio
    assert not list((out / "flac").glob(".*"))       # no temporary file left
    res = run_prep(tmp_path, "--sets", "arctic_train", "--arctic_train", str(rest))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "data" / "arctic_train" / "text").read_text().count("\n") == 3


@pytest.mark.cli  # reads the whole shipped text and lexicon (~25 s)
def test_shipped_text_is_open_and_holds_no_test_sentence():
    train = table(RECIPE / "local" / "text" / "train.text.xz")
    assert len(train) >= 200_000
    vocab = {w for s in train.values() for w in normalize_text(s).split()}
    assert len(vocab) >= 50_000
    assert max(len(normalize_text(s).split()) for s in train.values()) <= 35
    f = HeldoutFilter()
    for part in ("dev", "test"):
        f.add(l.split(" ", 1)[1] for l in (RECIPE / "db" / "arctic_cathy" / f"{part}.text").read_text().splitlines())
    assert not [s for s in train.values() if f.hits(s)]
    lex = lzma.decompress((RECIPE / "local" / "text" / "lexicon.txt.xz").read_bytes()).decode().splitlines()
    words = {l.split("\t", 1)[0] for l in lex}
    assert len(words) >= 50_000 and "the" in words


def test_pocketsphinx_peer_on_real_speech(tmp_path):
    pytest.importorskip("pocketsphinx")
    res = run_prep(tmp_path, "--sets", "arctic_dev", "--n_test", "3")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "ps"
    res = subprocess.run([sys.executable, "-m", "tasu.bin.peer_decode", "--system", "pocketsphinx", "--data",
                          str(tmp_path / "data" / "arctic_dev"), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    from tasu.score import read_text, score_texts

    r = score_texts(read_text(tmp_path / "data" / "arctic_dev" / "text"), read_text(out / "text"))
    assert r.n_utts == 3 and r.wer < 60     # a real recogniser on clean read speech
    assert 0 < float((out / "rtf").read_text()) < 5


def test_wb_inside_words_counts_the_encoder_splitting_a_word(tmp_path):
    """local/wb_inside_words.py: a <wb> the best path puts inside a word, at a compound split or not."""
    lex = tmp_path / "lexicon.txt"
    lex.write_text("rail\tɹ eɪ l\tr ai l\nroad\tɹ oʊ d\tr oa d\nrailroad\tɹ eɪ l ɹ oʊ d\tr ai l r oa d\n"
                   "the\tð ə\tth e\nmoney\tm ʌ n i\tm o n ey\n", encoding="utf-8")
    (tmp_path / "units").write_text("u1 ð ə <wb> ɹ eɪ l ɹ oʊ d\nu2 ð ə <wb> m ʌ n i\nu3 ɹ eɪ l ɹ oʊ d\n",
                                    encoding="utf-8")
    (tmp_path / "hyp").write_text("u1 ð ə <wb> ɹ eɪ l <wb> ɹ oʊ d\nu2 ð ə <wb> m ʌ <wb> n i\nu3 ɹ eɪ l ɹ oʊ t\n",
                                  encoding="utf-8")
    r = subprocess.run([sys.executable, str(RECIPE / "local" / "wb_inside_words.py"), "--units",
                        str(tmp_path / "units"), "--hyp", str(tmp_path / "hyp"), "--lexicon", str(lex)],
                       capture_output=True, text=True, cwd=TOP)
    assert r.returncode == 0, r.stderr
    assert "5 words of 3 utterances" in r.stdout
    # railroad twice (u1 split at rail|road, u3 not split), money split in the middle (not a compound)
    assert "2 words part into two lexicon words; the encoder wrote a <wb> at that place in 1 (50.0 %)" in r.stdout
    assert "a <wb> elsewhere inside a word: 1 of 5 words (20.00 %)" in r.stdout
