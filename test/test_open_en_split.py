"""open_en's local/split_asterisk.py: Asterisk prompts split by family into adaptation text, dev and
test, with no family and no (normalised) sentence on both sides; on a constructed set and the real one."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tasu.textnorm import normalize_text

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "open_en"
SOUNDS = Path("/usr/share/asterisk/sounds/en")
OUTS = ("text", "dev", "test")

PROMPTS = {  # name -> transcript; digits/star and letters/ascii42, vm-goodbye and goodbye, ... say the same
    "vm-press": "Press", "vm-goodbye": "Goodbye.", "vm-intro": "Please leave your message after the tone.",
    "vm-saved": "Your message has been saved.", "goodbye": "Goodbye!", "hello": "Hello, world.",
    "conf-muted": "You are now muted.", "conf-unmuted": "You are now unmuted.",
    "confbridge-muted": "You are now MUTED", "confbridge-leave": "To leave the conference, press 1.",
    **{f"digits/{i}": w for i, w in enumerate(["zero", "one", "two", "three", "four", "five"])},
    "digits/star": "star", "letters/ascii42": "Star.",
    "letters/a": "a", "letters/b": "b", "letters/c": "c", "auth-thankyou": "Thank you.",
    "privacy-thankyou": "Thank you!", "privacy-prompt": "Please say your name.",
    "dir-intro": "Welcome to the directory.",
}


def read(path: Path) -> dict[str, str]:
    return dict(l.split(" ", 1) for l in path.read_text().splitlines()) if path.exists() else {}


def family_of(wav: str, sounds: Path) -> str:
    name = Path(wav).relative_to(sounds.resolve()).with_suffix("").as_posix()
    return re.split(r"[-/]", name, maxsplit=1)[0]


def check_split(src: Path, out: str, sounds: Path) -> dict[str, dict[str, str]]:
    """The split's promises; returns split -> uid -> text (adaptation text: kept and dropped)."""
    wav, text = read(src / "wav.scp"), read(src / "text")
    dropped = read(Path(f"{out}_text") / "dropped")
    parts = {s: read(Path(f"{out}_{s}") / "text") for s in OUTS}
    assert not set(parts["text"]) & set(dropped)
    assigned = {"text": set(parts["text"]) | set(dropped), "dev": set(parts["dev"]), "test": set(parts["test"])}
    assert sum(len(v) for v in assigned.values()) == len(text) and set().union(*assigned.values()) == set(text)
    fams = {s: {l.split()[0]: int(l.split()[1]) for l in (Path(f"{out}_{s}") / "families").read_text().splitlines()}
            for s in OUTS}
    for s in OUTS:
        assert {family_of(wav[u], sounds) for u in assigned[s]} == set(fams[s])      # the families it lists
        assert sum(fams[s].values()) == len(assigned[s])
        for f in fams[s]:
            assert all(f not in fams[o] for o in OUTS if o != s), f"family {f} in two splits"
    for s in ("dev", "test"):
        assert read(Path(f"{out}_{s}") / "wav.scp") == {u: wav[u] for u in assigned[s]}
        assert set(read(Path(f"{out}_{s}") / "utt2spk")) == assigned[s]
    held = {normalize_text(t) for s in ("dev", "test") for t in parts[s].values()}
    assert not {normalize_text(t) for t in parts["text"].values()} & held
    assert all(normalize_text(text[u]) in held and v in assigned["dev"] | assigned["test"] for u, v in dropped.items())
    sentences = (Path(f"{out}_text") / "sentences.txt").read_text().splitlines()
    assert sentences == [parts["text"][u] for u in sorted(parts["text"])]
    return {s: {u: text[u] for u in assigned[s]} for s in OUTS}


def snapshot(out: str) -> dict[str, bytes]:
    return {f"{s}/{p.name}": p.read_bytes() for s in OUTS for p in sorted(Path(f"{out}_{s}").iterdir())}


def split(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RECIPE / "local" / "split_asterisk.py"), *args],
                          capture_output=True, text=True)


def test_split_on_a_constructed_set(tmp_path):
    """Fake wavs (the split reads names, not audio) under a linked sounds dir, as Debian installs them."""
    real = tmp_path / "en_US_f_Allison"
    for name in PROMPTS:
        (real / name).parent.mkdir(parents=True, exist_ok=True)
        (real / f"{name}.wav").write_bytes(b"RIFF")
    (tmp_path / "en").symlink_to(real)
    src = tmp_path / "data" / "asterisk"
    src.mkdir(parents=True)
    uid = {n: "asterisk-" + re.sub(r"[^A-Za-z0-9_-]", "_", n) for n in PROMPTS}
    (src / "wav.scp").write_text("".join(f"{uid[n]} {real / n}.wav\n" for n in sorted(PROMPTS, key=uid.get)))
    (src / "text").write_text("".join(f"{uid[n]} {PROMPTS[n]}\n" for n in sorted(PROMPTS, key=uid.get)))
    out = str(tmp_path / "data" / "asterisk_adapt")
    args = ("--src", str(src), "--sounds", str(tmp_path / "en"), "--out", out)
    res = split(*args)
    assert res.returncode == 0, res.stderr
    got = check_split(src, out, tmp_path / "en")
    fams = {s: (Path(f"{out}_{s}") / "families").read_text() for s in OUTS}
    # 25 prompts, targets 12.5 / 6.25 / 6.25: digits (7) first to the text, vm and letters (4) to test and dev,
    # then the families of 2 and 1 into the gaps
    assert fams == {"text": "auth 1\nconf 2\nconfbridge 2\ndigits 7\nhello 1\n", "dev": "letters 4\nprivacy 2\n",
                    "test": "dir 1\ngoodbye 1\nvm 4\n"}
    assert read(Path(f"{out}_text") / "dropped") == {"asterisk-auth-thankyou": "asterisk-privacy-thankyou",
                                                     "asterisk-digits_star": "asterisk-letters_ascii42"}
    assert "2 dropped" in res.stderr and "13 assigned" in res.stderr
    assert [len(got[s]) for s in OUTS] == [13, 6, 6]
    before = snapshot(out)
    assert split(*args).returncode == 0 and snapshot(out) == before                  # a re-run: the same bytes
    assert not list(Path(f"{out}_text").glob(".*"))                                   # no temp file left
    (src / "wav.scp").write_text((src / "wav.scp").read_text().replace(f"{real}/hello.wav", "/nowhere/hello.wav"))
    res = split(*args)
    assert res.returncode != 0 and "wav.scp:" in res.stderr and "asterisk-hello" in res.stderr


@pytest.mark.skipif(not SOUNDS.is_dir(), reason="Debian asterisk-core-sounds-en-wav not installed")
def test_split_of_the_real_asterisk_set(tmp_path):
    """prepare_data.py --sets asterisk asterisk_adapt; about half of the prompts (+-5 points) go to the
    adaptation text, a quarter (+-5 points) each to dev and test."""
    data = tmp_path / "data"
    res = subprocess.run([sys.executable, str(RECIPE / "local" / "prepare_data.py"), "--data", str(data),
                          "--sets", "asterisk", "asterisk_adapt"], cwd=RECIPE, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = str(data / "asterisk_adapt")
    got = check_split(data / "asterisk", out, SOUNDS)
    n = sum(len(v) for v in got.values())
    assert n > 500
    assert abs(len(got["text"]) / n - 0.5) <= 0.05
    assert all(abs(len(got[s]) / n - 0.25) <= 0.05 for s in ("dev", "test"))
    assert 0 < len(read(Path(f"{out}_text") / "dropped")) < 0.1 * len(got["text"])
    before = snapshot(out)
    res = split("--src", str(data / "asterisk"), "--out", out)
    assert res.returncode == 0, res.stderr
    assert snapshot(out) == before
