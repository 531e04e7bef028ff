"""Bad input catalogue (issue 6): malformed inputs through the CLIs.

Every case feeds one malformed input to one CLI and asserts that it ends either in a clear
error naming the offending file (and ``:<line>`` where there is one) with a non-zero exit
status, or in a documented skip whose count is logged -- never in a bare Python traceback.
The skip rules relied on are documented in the README ("Rules for bad input") and in the
CLI docstrings: ``tasu.bin.dump_posteriors`` (``--skip_bad_audio``: listed in
``<out>/skipped``, counted), ``tasu.bin.make_units`` (empty transcripts: ``units.skipped``,
counted), ``tasu.bin.fix_data_dir`` (dropped lines counted per reason) and
``tasu.bin.score`` (missing/extra hypotheses counted). Audio at another sample rate is not an
error (it is resampled), so it is not a case here.

CLIs run in process through their ``main(argv)`` (output = stderr + log records); ``train``
runs as a subprocess (it installs its own log handlers). No case loads the LLM: every input
is checked before it is loaded.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import subprocess
import sys
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

pytest.importorskip("hama")
TOP = Path(__file__).resolve().parents[1]
SR = 16000


# ---------------------------------------------------------------------------
# tiny inputs
# ---------------------------------------------------------------------------


def sine(path: Path, seconds: float = 0.3, sr: int = SR, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


def put(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def data_dir(tmp: Path, *, wav: dict[str, str] | None = None, **tables: str | bytes | None) -> Path:
    """A valid dir u1..u3 (sine wavs, two speakers); ``tables`` replace (or with None delete) files."""
    d = tmp / "data"
    if wav is None:
        wav = {u: str(sine(tmp / "wav" / f"{u}.wav", freq=300 + 100 * i)) for i, u in enumerate(("u1", "u2", "u3"))}
    files = {
        "wav.scp": "".join(f"{u} {p}\n" for u, p in wav.items()),
        "text": "u1 hello world\nu2 good bye\nu3 yes\n",
        "utt2spk": "u1 a\nu2 a\nu3 b\n",
        "spk2utt": "a u1 u2\nb u3\n",
    }
    files.update(tables)
    for name, content in files.items():
        if content is not None:
            put(d / name, content)
    return d


@pytest.fixture(scope="module")
def inventory():
    from tasu.encoders.hama import HamaEncoder

    return HamaEncoder().inventory


def fake_expdir(root: Path, inventory, *, model=None, config: str | None = None, units: str | None = None) -> Path:
    """An exp dir as training leaves it (config.yaml, units.txt, model.pt) with tiny fake weights."""
    import torch

    from tasu.config import TrainConfig, save_config

    e = root / "exp" / "tasu_tiny"
    e.mkdir(parents=True, exist_ok=True)
    if config is None:
        cfg = TrainConfig()
        cfg.projector.init, cfg.projector.hidden, cfg.lora.r = "random", 16, 2
        save_config(cfg, e / "config.yaml")
    else:
        put(e / "config.yaml", config)
    if units is None:
        inventory.to_file(e / "units.txt")
    else:
        put(e / "units.txt", units)
    if isinstance(model, bytes):
        put(e / "model.pt", model)
    elif model != "absent":
        state = model if model is not None else {
            "projector.net.1.weight": torch.zeros(2, 2),
            "llm.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight": torch.zeros(2, 2)}
        torch.save(state, e / "model.pt")
    return e


def feats_scp(tmp: Path, dim: int = 191) -> Path:
    import kaldiio

    out = tmp / "dump"
    out.mkdir(parents=True, exist_ok=True)
    post = np.full((4, dim), 1.0 / dim, dtype=np.float32)
    with kaldiio.WriteHelper(f"ark,scp:{out / 'feats.ark'},{out / 'feats.scp'}") as w:
        w("u1", post)
    return out / "feats.scp"


@pytest.fixture(scope="module")
def packed(tmp_path_factory, inventory):
    """A packed zip of a fake exp dir (packing needs no LLM) and its member names."""
    from tasu.zoo import pack

    root = tmp_path_factory.mktemp("packed")
    e = fake_expdir(root, inventory)
    dec = put(root / "decode.yaml", "max_new_tokens: 6\n")
    z = pack(e, root / "tiny.zip", decode_config=dec)
    return z


def rezip(src: Path, dst: Path, *, drop=(), replace: dict[str, bytes] | None = None, fix_sums: bool = True) -> Path:
    """Copy a packed zip, dropping or replacing members (with meta.yaml checksums updated if ``fix_sums``)."""
    import hashlib

    replace = replace or {}
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist() if n not in drop}
    members.update(replace)
    if fix_sums:
        meta = yaml.safe_load(members["meta.yaml"])
        for n in replace:
            meta["sha256"][n] = hashlib.sha256(replace[n]).hexdigest()
        members["meta.yaml"] = yaml.safe_dump(meta).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return dst


# ---------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------


@dataclass
class Expect:
    """Run ``python -m tasu.bin.<cli> <argv>``: exit status ``rc`` (None: 0 or 1) and ``says`` in the output."""

    cli: str
    argv: list
    rc: int | None
    says: list[str]
    check: Callable[[], None] | None = None  # extra assertions on what was written
    subprocess: bool = False
    timeout: int = 300


def run_cli(ex: Expect, capsys, caplog) -> tuple[int | str, str]:
    argv = [str(a) for a in ex.argv]
    if ex.subprocess:
        r = subprocess.run([sys.executable, "-m", f"tasu.bin.{ex.cli}", *argv], cwd=TOP, capture_output=True,
                           text=True, timeout=ex.timeout)
        return r.returncode, r.stdout + r.stderr
    caplog.set_level(logging.INFO)
    main = importlib.import_module(f"tasu.bin.{ex.cli}").main
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse errors; SystemExit("message")
        rc = e.code if isinstance(e.code, int) else 1
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:  # a bare traceback: what no case may end in
        rc = "uncaught exception"
        print(traceback.format_exc(), file=sys.stderr)
    cap = capsys.readouterr()
    return rc, cap.err + cap.out + caplog.text


CASES = []


def case(name: str, *marks):
    def deco(fn):
        CASES.append(pytest.param(fn, id=name, marks=marks))
        return fn
    return deco


@pytest.mark.parametrize("make", CASES)
def test_bad_input(make, tmp_path, capsys, caplog, request):
    fixtures = list(inspect.signature(make).parameters)[1:]  # after tmp: module fixtures (inventory, packed)
    ex = make(tmp_path, *(request.getfixturevalue(n) for n in fixtures))
    rc, out = run_cli(ex, capsys, caplog)
    assert "Traceback" not in out, f"bare traceback from {ex.cli}:\n{out[-4000:]}"
    if ex.rc is None:
        assert rc in (0, 1), f"{ex.cli} exited {rc!r}:\n{out[-3000:]}"
    else:
        assert rc == ex.rc, f"{ex.cli} exited {rc!r}, expected {ex.rc}:\n{out[-3000:]}"
    for s in ex.says:
        assert str(s) in out, f"{s!r} not in the output of {ex.cli}:\n{out[-3000:]}"
    if ex.check is not None:
        ex.check()


# ---------------------------------------------------------------------------
# data dirs: validate_data_dir / fix_data_dir
# ---------------------------------------------------------------------------


def validate(d: Path, line_of: str, *more, rc: int = 1, args=()) -> Expect:
    return Expect("validate_data_dir", [d, *args], rc, [line_of, *more])


@case("dir-unsorted-ids")
def _(tmp):
    d = data_dir(tmp, text="u2 good bye\nu1 hello world\nu3 yes\n")
    return validate(d, f"{d / 'text'}:2: ", "not sorted")


@case("dir-duplicate-id")
def _(tmp):
    d = data_dir(tmp)
    lines = (d / "wav.scp").read_text().splitlines()
    put(d / "wav.scp", "\n".join([lines[0], lines[0], *lines[1:]]) + "\n")
    return validate(d, f"{d / 'wav.scp'}:2: ", "duplicate key 'u1'")


@case("dir-text-id-without-audio")
def _(tmp):
    d = data_dir(tmp, text="u1 hello world\nu2 good bye\nu3 yes\nu4 extra\n")
    return validate(d, f"{d / 'text'}:4: ", "have no audio in wav.scp", "'u4'")


@case("dir-audio-without-text")
def _(tmp):
    d = data_dir(tmp, text="u1 hello world\nu3 yes\n")
    return validate(d, f"{d / 'wav.scp'}:2: ", "have no transcript", "'u2'")


@case("dir-text-line-with-only-id")
def _(tmp):
    d = data_dir(tmp, text="u1 hello world\nu2\nu3 yes\n")
    return validate(d, f"{d / 'text'}:2: ", "empty value")


@case("dir-empty-transcript-trailing-space")
def _(tmp):
    d = data_dir(tmp, text="u1 hello world\nu2 \t \nu3 yes\n")
    return validate(d, f"{d / 'text'}:2: ", "empty value")


@case("dir-blank-line")
def _(tmp):
    d = data_dir(tmp, utt2spk="u1 a\n\nu2 a\nu3 b\n")
    return validate(d, f"{d / 'utt2spk'}:2: ", "blank line")


@case("dir-non-utf8-text")
def _(tmp):
    d = data_dir(tmp, text="u1 hello world\nu2 caf\xe9\nu3 yes\n".encode("latin-1"))
    return validate(d, f"{d / 'text'}:2: ", "not valid UTF-8")


@case("dir-utf8-bom")
def _(tmp):
    d = data_dir(tmp, text="\ufeffu1 hello world\nu2 good bye\nu3 yes\n")
    return validate(d, f"{d / 'text'}:1: ", "byte-order mark")


@case("dir-spk2utt-inconsistent")
def _(tmp):
    d = data_dir(tmp, spk2utt="a u1\nb u2 u3\n")
    return validate(d, f"{d / 'spk2utt'}:", "regenerate it")


@case("dir-utt2spk-missing-utt")
def _(tmp):
    d = data_dir(tmp, utt2spk="u1 a\nu3 b\n", spk2utt="a u1\nb u3\n")
    return validate(d, f"{d / 'utt2spk'}: ", "have no speaker", "'u2'")


@case("dir-speaker-id-with-space")
def _(tmp):
    d = data_dir(tmp, utt2spk="u1 a\nu2 a x\nu3 b\n")
    return validate(d, f"{d / 'utt2spk'}:2: ", "single token")


@case("dir-missing-required-file")
def _(tmp):
    d = data_dir(tmp, text=None)
    return validate(d, f"{d / 'text'}: ", "required file is missing", args=("--require", "text"))


@case("dir-does-not-exist")
def _(tmp):
    return validate(tmp / "nope", f"{tmp / 'nope'}: ", "does not exist")


def _segments_dir(tmp, segments: str) -> Path:
    rec = sine(tmp / "wav" / "rec.wav", seconds=1.0)
    return data_dir(tmp, wav={"rec": str(rec)}, text="s1 hello\ns2 world\n", utt2spk="s1 a\ns2 a\n",
                    spk2utt="a s1 s2\n", segments=segments)


@case("segments-end-before-start")
def _(tmp):
    d = _segments_dir(tmp, "s1 rec 0.0 0.4\ns2 rec 0.8 0.5\n")
    return validate(d, f"{d / 'segments'}:2: ", "not after its start")


@case("segments-time-not-a-number")
def _(tmp):
    d = _segments_dir(tmp, "s1 rec 0.0 0.4\ns2 rec 0.5 end\n")
    return validate(d, f"{d / 'segments'}:2: ", "is not a number")


@case("segments-unknown-recording")
def _(tmp):
    d = _segments_dir(tmp, "s1 rec 0.0 0.4\ns2 rec2 0.5 0.9\n")
    return validate(d, f"{d / 'segments'}:2: ", "'rec2'", "not in wav.scp")


@case("segments-past-recording-end")
def _(tmp):
    d = _segments_dir(tmp, "s1 rec 0.0 0.4\ns2 rec 0.5 9.0\n")
    return validate(d, f"{d / 'segments'}:2: ", "lasts 1.000 s")


# audio files, checked from their headers (pipes are run with --read-pipes)


def _audio_dir(tmp, bad_value: str) -> Path:
    good = sine(tmp / "wav" / "u1.wav")
    return data_dir(tmp, wav={"u1": str(good), "u2": bad_value, "u3": str(good)})


@case("audio-missing-wav")
def _(tmp):
    d = _audio_dir(tmp, str(tmp / "missing.wav"))
    return validate(d, f"{d / 'wav.scp'}:2: ", "missing.wav", "does not exist")


@case("audio-zero-byte-wav")
def _(tmp):
    d = _audio_dir(tmp, str(put(tmp / "zero.wav", b"")))
    return validate(d, f"{d / 'wav.scp'}:2: ", "zero.wav")


@case("audio-header-only-wav")
def _(tmp):
    head = sine(tmp / "full.wav").read_bytes()[:44]
    d = _audio_dir(tmp, str(put(tmp / "head.wav", head)))
    return validate(d, f"{d / 'wav.scp'}:2: ", "is empty (0 samples)")


@case("audio-truncated-header")
def _(tmp):
    head = sine(tmp / "full.wav").read_bytes()[:30]
    d = _audio_dir(tmp, str(put(tmp / "cut.wav", head)))
    return validate(d, f"{d / 'wav.scp'}:2: ", "cut.wav")


@case("audio-non-audio-bytes")
def _(tmp):
    d = _audio_dir(tmp, str(put(tmp / "notes.wav", "these are meeting notes, not audio\n")))
    return validate(d, f"{d / 'wav.scp'}:2: ", "notes.wav")


@case("audio-pipe-command-fails")
def _(tmp):
    d = _audio_dir(tmp, "sox /nonexistent/in.wav -t wav - |")
    return validate(d, f"{d / 'wav.scp'}:2: ", "command failed", args=("--read-pipes",))


@case("audio-ark-missing")
def _(tmp):
    d = _audio_dir(tmp, f"{tmp}/nowhere.ark:12")
    return validate(d, f"{d / 'wav.scp'}:2: ", "nowhere.ark", args=("--read-pipes",))


@case("fix-non-utf8-file")
def _(tmp):
    d = data_dir(tmp, text="u1 hello\nu2 \xff\xfe\n".encode("latin-1"))
    return Expect("fix_data_dir", [d], 1, [f"{d / 'text'}:2: ", "not valid UTF-8"])


@case("fix-no-common-id")
def _(tmp):
    d = data_dir(tmp, text="x1 a\nx2 b\n")
    before = (d / "text").read_bytes()

    def unchanged():
        assert (d / "text").read_bytes() == before and not (d / ".backup").exists()
    return Expect("fix_data_dir", [d], 1, [f"{d}: ", "no utterance id is present in every file"], unchanged)


@case("fix-drops-and-counts")
def _(tmp):
    d = data_dir(tmp, text="u3 yes\nu1 hello world\nu1 again\nu2\n")

    def repaired():
        from tasu.data import DataDir

        assert DataDir.load(d).utt_ids == ["u1", "u3"]
        assert (d / ".backup" / "text").read_text().startswith("u3 yes")
    return Expect("fix_data_dir", [d], 0, [f"{d / 'text'}: kept 2 of 4 lines; dropped 2 (1 duplicate id, "
                                           "1 empty transcript); re-sorted", "1 not in text"], repaired)


# ---------------------------------------------------------------------------
# stage 1: make_units (lexicon) and dump_posteriors (audio, decode config)
# ---------------------------------------------------------------------------

LEXICON = ("bye\tb aɪ\tb ye\ngood\tɡ ʊ d\tg oo d\nhello\th ə l oʊ\th e ll o\nworld\tw ɝ l d\tw or l d\n"
           "yes\tj ɛ s\ty e s\n")


def make_units(tmp, d, lexicon: Path) -> Expect:
    return Expect("make_units", ["--data", d, "--out", tmp / "dump", "--lexicon", lexicon], 1, [])


@case("units-text-missing")
def _(tmp):
    d = data_dir(tmp, text=None)
    ex = make_units(tmp, d, put(tmp / "lexicon.txt", LEXICON))
    ex.says = [f"{d / 'text'}: ", "required file is missing"]
    return ex


@case("lexicon-line-without-tab")
def _(tmp):
    d = data_dir(tmp)
    lex = put(tmp / "lexicon.txt", LEXICON.replace("good\tɡ ʊ d\tg oo d", "good ɡ ʊ d"))
    ex = make_units(tmp, d, lex)
    ex.says = [f"{lex}:2: ", "expected '<word>"]
    return ex


@case("lexicon-non-utf8")
def _(tmp):
    d = data_dir(tmp)
    lex = put(tmp / "lexicon.txt", b"bye\tb a\xff\tb ye\n")
    ex = make_units(tmp, d, lex)
    ex.says = [f"{lex}:1: ", "UTF-8"]
    return ex


@case("units-empty-transcript-skipped")
def _(tmp):
    d = data_dir(tmp, text="u1 hello world\nu2 ...\nu3 yes\n")
    ex = make_units(tmp, d, put(tmp / "lexicon.txt", LEXICON))
    ex.rc = 0
    ex.says = ["wrote units for 2 utterances, skipped 1"]

    def listed():
        assert (tmp / "dump" / "units.skipped").read_text() == "u2 empty transcript after normalisation\n"
        assert (tmp / "dump" / "units").read_text().startswith("u1 h ə l oʊ <wb> w ɝ l d\nu3 ")
    ex.check = listed
    return ex


@case("units-nothing-pronounceable")
def _(tmp):
    d = data_dir(tmp, text="u1 ...\nu2 !\nu3 ?\n")
    ex = make_units(tmp, d, put(tmp / "lexicon.txt", LEXICON))
    ex.says = [f"{d}: ", "skipped 3", str(tmp / "dump" / "units.skipped")]
    return ex


def dump(tmp, d, *more, rc=1) -> Expect:
    return Expect("dump_posteriors", ["--data", d, "--out", tmp / "dump", *more], rc, [])


@case("dump-missing-wav")
def _(tmp):
    d = _audio_dir(tmp, str(tmp / "missing.wav"))
    ex = dump(tmp, d)
    ex.says = [f"{d / 'wav.scp'}:2: ", "missing.wav"]
    ex.check = lambda: not (tmp / "dump" / "feats.scp").exists() or pytest.fail("feats.scp written")
    return ex


@case("dump-corrupt-wav")
def _(tmp):
    d = _audio_dir(tmp, str(put(tmp / "bad.wav", b"RIFF\x00\x00\x00\x00WAVEfmt garbage")))
    ex = dump(tmp, d)
    ex.says = [f"{d / 'wav.scp'}:2: ", "bad.wav"]
    return ex


@case("dump-pipe-fails")
def _(tmp):
    d = _audio_dir(tmp, "exit 3 |")
    ex = dump(tmp, d)
    ex.says = [f"{d / 'wav.scp'}:2: ", "exit status 3"]
    return ex


@case("dump-segment-selects-no-audio")
def _(tmp):
    d = _segments_dir(tmp, "s1 rec 0.0 0.4\ns2 rec 5.0 6.0\n")
    ex = dump(tmp, d)
    ex.says = [f"{d / 'segments'}:2: ", "selects no audio"]
    return ex


@case("dump-skip-bad-audio-counted")
def _(tmp):
    d = _audio_dir(tmp, str(put(tmp / "zero.wav", b"")))
    ex = dump(tmp, d, "--skip_bad_audio", "true", rc=0)
    # sine tones are no speech: u1 and u3 are skipped too, for an empty PSD output
    ex.says = ["0 utterances dumped, 3 skipped", str(tmp / "dump" / "skipped")]

    def listed():
        skipped = (tmp / "dump" / "skipped").read_text().splitlines()
        assert [s.split()[0] for s in skipped] == ["u1", "u2", "u3"]
        assert skipped[0].startswith("u1 empty PSD output")
        assert skipped[1].startswith("u2 unreadable audio") and f"{d / 'wav.scp'}:2" in skipped[1]
    ex.check = listed
    return ex


def _tiny_hf(tmp, **kw) -> Path:
    pytest.importorskip("transformers")
    from tiny_hf import tiny_ctc_dir

    return tiny_ctc_dir(tmp / "hf_model", **kw)


@case("hf-encoder-dir-missing")
def _(tmp):
    return Expect("make_units", ["--data", data_dir(tmp), "--out", tmp / "dump", "--encoder", f"hf:{tmp}/no_model"],
                  1, [f"{tmp}/no_model: encoder model directory does not exist"])


@case("hf-encoder-without-ctc-head")
def _(tmp):
    m = _tiny_hf(tmp, head=False)
    ex = dump(tmp, data_dir(tmp), "--encoder", f"hf:{m}")
    ex.says = [f"{m}: the model (Wav2Vec2Model) has no CTC head"]
    return ex


@case("hf-units-character-outside-vocabulary")
def _(tmp):
    m = _tiny_hf(tmp)
    d = data_dir(tmp, text="u1 hello world\nu2 good bye\nu3 yes 2\n")
    return Expect("make_units", ["--data", d, "--out", tmp / "dump", "--encoder", f"hf:{m}", "--oov", "fail"], 1,
                  [f"{d / 'text'}:3: utterance u3: character '2' (U+0032) at position 5"])


@case("config-missing-file")
def _(tmp):
    d = data_dir(tmp)
    return Expect("dump_posteriors", ["--data", d, "--out", tmp / "dump", "--config", tmp / "nope.yaml"], 1,
                  [f"{tmp / 'nope.yaml'}: ", "not found"])


@case("config-invalid-yaml")
def _(tmp):
    d = data_dir(tmp)
    c = put(tmp / "decode.yaml", "batch_size: 4\npsd_threshold: [0.5\n")
    return Expect("dump_posteriors", ["--data", d, "--out", tmp / "dump", "--config", c], 1,
                  [f"{c}: invalid YAML", "line 3"])


@case("config-unknown-key")
def _(tmp):
    d = data_dir(tmp)
    c = put(tmp / "decode.yaml", "batch_size: 4\npsd_treshold: 0.4\n")
    return Expect("dump_posteriors", ["--data", d, "--out", tmp / "dump", "--config", c], 1,
                  [f"{c}: unknown key 'psd_treshold'"])


@case("config-wrong-type")
def _(tmp):
    d = data_dir(tmp)
    c = put(tmp / "decode.yaml", "psd_threshold: high\n")
    return Expect("dump_posteriors", ["--data", d, "--out", tmp / "dump", "--config", c], 1,
                  [f"{c}: ", "'psd_threshold'", "'high'"])


# ---------------------------------------------------------------------------
# stage 4: decode (exp dir, checkpoint, decode config, vocabulary)
# ---------------------------------------------------------------------------


def decode(tmp, expdir, *more) -> Expect:
    return Expect("decode", ["--expdir", expdir, "--feats", feats_scp(tmp), "--outdir", tmp / "out", *more], 1, [])


@case("decode-feats-missing")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory)
    return Expect("decode", ["--expdir", e, "--feats", tmp / "dump" / "feats.scp", "--outdir", tmp / "out"], 1,
                  [f"{tmp / 'dump' / 'feats.scp'}: missing"])


@case("decode-config-missing")
def _(tmp, inventory):
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", tmp / "nope.yaml")
    ex.says = [f"{tmp / 'nope.yaml'}: ", "not found"]
    return ex


@case("decode-config-wrong-type")
def _(tmp, inventory):
    c = put(tmp / "decode.yaml", "batch_size: big\n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", c)
    ex.says = [f"{c}: ", "'batch_size'", "'big'"]
    return ex


@case("decode-rescoring-without-beams")
def _(tmp, inventory):
    c = put(tmp / "decode.yaml", "num_beams: 1\nacoustic_weight: 0.5\n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", c)
    ex.says = [f"{c}: acoustic_weight 0.5", "needs num_beams > 1"]
    return ex


@case("decode-rescoring-lexicon-missing")
def _(tmp, inventory):
    ex = decode(tmp, fake_expdir(tmp, inventory), "--lexicon", tmp / "nolex.txt")
    ex.says = [f"{tmp / 'nolex.txt'}: missing"]
    return ex


@case("decode-expansion-without-acoustic-weight")
def _(tmp, inventory):
    c = put(tmp / "decode.yaml", "num_beams: 1\nexpand_per_span: 2\n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", c)
    ex.says = [f"{c}: expand_per_span 2", "needs acoustic_weight > 0"]
    return ex


@case("decode-word-boundary-cost-negative")
def _(tmp, inventory):
    c = put(tmp / "decode.yaml", "num_beams: 1\nacoustic_weight: 1\nexpand_per_span: 2\nalign_wb_cost: -1\n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", c)
    ex.says = [f"{c}: align_wb_cost must be >= 0 or null, got -1"]
    return ex


@case("decode-expansion-rounds-zero")
def _(tmp, inventory):
    c = put(tmp / "decode.yaml", "num_beams: 1\nacoustic_weight: 1\nexpand_per_span: 2\nexpand_rounds: 0\n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", c)
    ex.says = [f"{c}: expand_rounds must be >= 1 (got 0)"]
    return ex


@case("decode-prior-without-acoustic-weight")
def _(tmp, inventory):
    c = put(tmp / "decode.yaml", "num_beams: 2\nprior_weight: 1\n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", c)
    ex.says = [f"{c}: prior_weight 1 weighs the answers", "needs acoustic_weight > 0"]
    return ex


@case("decode-expansion-lexicon-malformed")
def _(tmp, inventory):
    c = put(tmp / "decode.yaml", "num_beams: 1\nacoustic_weight: 1\nexpand_per_span: 2\n")
    lex = put(tmp / "lexicon.txt", LEXICON + "no tab on this line\n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--config", c, "--lexicon", lex)
    ex.says = [f"{lex}:{LEXICON.count(chr(10)) + 1}: expected"]
    return ex


@case("exp-model-pt-missing")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, model="absent")
    ex = decode(tmp, e)
    ex.says = [f"{e / 'model.pt'}: missing"]
    return ex


@case("exp-model-pt-truncated")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory)
    full = (e / "model.pt").read_bytes()
    put(e / "model.pt", full[: len(full) // 2])
    ex = decode(tmp, e)
    ex.says = [f"{e / 'model.pt'}: ", "not a readable"]
    return ex


@case("exp-model-pt-not-torch")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, model=b"<html>404 Not Found</html>\n")
    ex = decode(tmp, e)
    ex.says = [f"{e / 'model.pt'}: ", "not a readable"]
    return ex


@case("exp-model-pt-lacks-projector")
def _(tmp, inventory):
    import torch

    e = fake_expdir(tmp, inventory, model={"llm.x.lora_A.default.weight": torch.zeros(2)})
    ex = decode(tmp, e)
    ex.says = [f"{e / 'model.pt'}: ", "projector"]
    return ex


@case("exp-units-txt-malformed")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, units="<blank> 0\n<wb> 1\nə\n")
    ex = decode(tmp, e)
    ex.says = [f"{e / 'units.txt'}:3: ", "expected '<unit> 2'"]
    return ex


@case("exp-config-unknown-key")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, config="llm: smollm2-135m-instruct\nprojektor:\n  hidden: 8\n")
    ex = decode(tmp, e)
    ex.says = [f"{e / 'config.yaml'}: unknown key 'projektor'"]
    return ex


@case("vocabulary-empty")
def _(tmp, inventory):
    v = put(tmp / "vocab.txt", "\n  \n")
    ex = decode(tmp, fake_expdir(tmp, inventory), "--vocabulary", v)
    ex.says = [f"{v}: ", "empty"]
    return ex


@case("vocabulary-non-utf8")
def _(tmp, inventory):
    v = put(tmp / "vocab.txt", "cat\ncaf\xe9\n".encode("latin-1"))
    ex = decode(tmp, fake_expdir(tmp, inventory), "--vocabulary", v)
    ex.says = [f"{v}:2: ", "UTF-8"]
    return ex


@case("decode-feats-ark-missing")
def _(tmp, inventory):
    feats = put(tmp / "dump" / "feats.scp", f"u1 {tmp}/dump/gone.ark:12\n")
    return Expect("decode", ["--expdir", fake_expdir(tmp, inventory), "--feats", feats, "--outdir", tmp / "out"], 1,
                  [f"{feats}: cannot read the posteriors", "gone.ark"])


@case("decode-feats-wrong-dim")
def _(tmp, inventory):
    ex = decode(tmp, fake_expdir(tmp, inventory))
    ex.argv[3] = feats_scp(tmp, dim=40)
    ex.says = [f"{ex.argv[3]}: utterance u1 has shape (4, 40)", "[T, 191]"]
    return ex


@case("exp-config-section-not-mapping")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, config="llm: smollm2-135m-instruct\noptim: 5\n")
    ex = decode(tmp, e)
    ex.says = [f"{e / 'config.yaml'}.optim: expected a mapping"]
    return ex


# ---------------------------------------------------------------------------
# stage 5: score
# ---------------------------------------------------------------------------


def score(tmp, ref: str | bytes, hyp: str | bytes, rc=1) -> Expect:
    r, h = put(tmp / "ref" / "text", ref), put(tmp / "hyp" / "text", hyp)
    return Expect("score", ["--ref", r, "--hyp", h, "--out", tmp / "result.txt"], rc, [])


@case("score-ref-missing")
def _(tmp):
    h = put(tmp / "hyp", "u1 a\n")
    return Expect("score", ["--ref", tmp / "ref", "--hyp", h, "--out", tmp / "result.txt"], 1, [str(tmp / "ref")])


@case("score-hyp-non-utf8")
def _(tmp):
    ex = score(tmp, "u1 a cafe\nu2 b\n", "u1 a caf\xe9\nu2 b\n".encode("latin-1"))
    ex.says = [f"{tmp / 'hyp' / 'text'}:1: ", "UTF-8"]
    return ex


@case("score-ref-duplicate-id")
def _(tmp):
    ex = score(tmp, "u1 a\nu1 b\n", "u1 a\n")
    ex.says = [f"{tmp / 'ref' / 'text'}:2: ", "duplicate"]
    return ex


@case("score-hyp-blank-line")
def _(tmp):
    ex = score(tmp, "u1 a\nu2 b\n", "u1 a\n\nu2 b\n")
    ex.says = [f"{tmp / 'hyp' / 'text'}:2: ", "without utterance id"]
    return ex


@case("score-missing-and-extra-hyp-counted")
def _(tmp):
    ex = score(tmp, "u1 a b\nu2 c d\n", "u1 a b\nu9 x\n", rc=0)
    ex.says = ["1 missing hyp (scored as empty)", "1 extra hyp (ignored)"]
    ex.check = lambda: json.loads((tmp / "score.json").read_text())["n_utts"] == 2 or pytest.fail("n_utts")
    return ex


@case("score-json-corrupt")
def _(tmp):
    put(tmp / "decode_a" / "score.json", '{"n_utts": 3, "wer": ')
    return Expect("score", ["--results-md", tmp / "RESULTS.md", "--decode-dirs", tmp / "decode_a", "--model", "m"],
                  1, [f"{tmp / 'decode_a' / 'score.json'}: ", "JSON"])


# ---------------------------------------------------------------------------
# stage 6 and tasu-infer: packed models
# ---------------------------------------------------------------------------


@case("pack-exp-lacks-model-pt")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, model="absent")
    return Expect("pack", ["--expdir", e, "--out", tmp / "m.zip"], 1, [f"{e / 'model.pt'}: missing"])


@case("pack-model-pt-truncated-fp16")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory)
    put(e / "model.pt", (e / "model.pt").read_bytes()[:100])
    return Expect("pack", ["--expdir", e, "--out", tmp / "m.zip", "--dtype", "float16"], 1,
                  [f"{e / 'model.pt'}: ", "not a readable"])


@case("pack-config-invalid-yaml")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, config="llm: [smollm2\n")
    return Expect("pack", ["--expdir", e, "--out", tmp / "m.zip"], 1, [f"{e / 'config.yaml'}: ", "YAML"])


@case("pack-decode-config-unknown-key")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory)
    c = put(tmp / "decode.yaml", "beams: 4\n")
    return Expect("pack", ["--expdir", e, "--out", tmp / "m.zip", "--decode_config", c], 1,
                  [f"{c}: unknown key 'beams'"])


@case("pack-lexicon-malformed")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory)
    lex = put(tmp / "lexicon.txt", "cat\tk æ t\ndog d ɒ ɡ\n")
    return Expect("pack", ["--expdir", e, "--out", tmp / "m.zip", "--lexicon", lex], 1, [f"{lex}:2: expected"])


@case("zip-not-a-zip")
def _(tmp):
    z = put(tmp / "m.zip", b"PK\x03\x04 this is not really a zip")
    return Expect("pack", ["--unpack", z, "--out", tmp / "out"], 1, [f"{z}: ", "not a readable zip"])


@case("zip-truncated")
def _(tmp, packed):
    z = put(tmp / "m.zip", packed.read_bytes()[: packed.stat().st_size // 2])
    return Expect("pack", ["--unpack", z, "--out", tmp / "out"], 1, [f"{z}: "])


@case("zip-lacks-units-file")
def _(tmp, packed):
    z = rezip(packed, tmp / "m.zip", drop=("exp/tasu_tiny/units.txt",))
    return Expect("pack", ["--unpack", z, "--out", tmp / "out"], 1, [f"{z}: ", "'exp/tasu_tiny/units.txt'", "lacks"])


@case("zip-member-changed")
def _(tmp, packed):
    z = rezip(packed, tmp / "m.zip", replace={"exp/tasu_tiny/units.txt": b"<blank> 0\n"}, fix_sums=False)
    return Expect("pack", ["--unpack", z, "--out", tmp / "out"], 1, [f"{z}: ", "checksum mismatch"])


@case("zip-yaml-member-invalid")
def _(tmp, packed):
    z = rezip(packed, tmp / "m.zip", replace={"exp/tasu_tiny/decode.yaml": b"max_new_tokens: [6\n"})
    return Expect("pack", ["--unpack", z, "--out", tmp / "out"], 1,
                  [f"{z}: ", "'exp/tasu_tiny/decode.yaml'", "YAML"])


@case("infer-model-zip-lacks-meta")
def _(tmp, packed):
    z = rezip(packed, tmp / "m.zip", drop=("meta.yaml",), fix_sums=False)
    return Expect("infer", ["--model", z, sine(tmp / "a.wav")], 2, [f"{z}: ", "no meta.yaml"])


@case("infer-model-not-a-zip")
def _(tmp):
    z = put(tmp / "m.zip", b"\x00" * 100)
    return Expect("infer", ["--model", z, sine(tmp / "a.wav")], 2, [f"{z}: ", "not a readable zip"])


@case("config-not-a-mapping")
def _(tmp):
    d = data_dir(tmp)
    c = put(tmp / "decode.yaml", "- batch_size\n- 4\n")
    return Expect("dump_posteriors", ["--data", d, "--out", tmp / "dump", "--config", c], 1,
                  [f"{c}: expected a mapping"])


@case("infer-model-exp-truncated-pt")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory)
    put(e / "model.pt", (e / "model.pt").read_bytes()[:-200])
    return Expect("infer", ["--model", e, sine(tmp / "a.wav")], 2, [f"{e / 'model.pt'}: ", "not a readable"])


@case("infer-model-pt-empty-dict")
def _(tmp, inventory):
    e = fake_expdir(tmp, inventory, model={})
    return Expect("infer", ["--model", e, sine(tmp / "a.wav")], 2, [f"{e / 'model.pt'}: ", "no tensors"])


@case("infer-model-not-found")
def _(tmp):
    return Expect("infer", ["--model", tmp / "nomodel", sine(tmp / "a.wav")], 2, [f"{tmp / 'nomodel'}"])


# ---------------------------------------------------------------------------
# stage 2: train (subprocess); every input is checked before the LLM is loaded.
# ---------------------------------------------------------------------------

TRAIN_YAML = ("projector:\n  init: random\n  hidden: 16\nlora:\n  r: 2\noptim:\n  max_steps: 1\n  batch_size: 1\n"
              "save_interval: 1\ndev_interval: 100\n")


def train(tmp, *, config: str | None = TRAIN_YAML, units: str = "u1 h ə l oʊ\n", text="u1 hello\n",
          more=()) -> Expect:
    d = tmp / "train"
    put(d / "text", text)
    u = put(tmp / "dump" / "units", units)
    c = tmp / "train.yaml"
    if config is not None:
        put(c, config)
    return Expect("train", ["--config", c, "--train_data", d, "--train_units", u, "--expdir", tmp / "exp", *more],
                  1, [], subprocess=True, timeout=600)


@case("train-units-line-with-only-id")
def _(tmp):
    ex = train(tmp, units="u1\n")
    ex.says = [f"{tmp / 'dump' / 'units'}:1: ", "empty value"]
    return ex


@case("train-units-unsorted")
def _(tmp):
    ex = train(tmp, units="u2 j ɛ s\nu1 h ə l oʊ\n", text="u1 hello\nu2 yes\n")
    ex.says = [f"{tmp / 'dump' / 'units'}:2: ", "not sorted"]
    return ex


@case("train-config-missing")
def _(tmp):
    ex = train(tmp, config=None)
    ex.says = [f"{tmp / 'train.yaml'}: config file not found"]
    return ex


@case("train-config-invalid-yaml")
def _(tmp):
    ex = train(tmp, config="optim:\n  lr: [0.1\n")
    ex.says = [f"{tmp / 'train.yaml'}: invalid YAML"]
    return ex


@case("train-config-unknown-key")
def _(tmp):
    ex = train(tmp, config=TRAIN_YAML + "optim_lr: 0.1\n")
    ex.says = [f"{tmp / 'train.yaml'}: unknown key 'optim_lr'"]
    return ex


@case("train-config-unknown-task")
def _(tmp):
    ex = train(tmp, config=TRAIN_YAML + "tasks: [asr, nosuch]\n")
    ex.says = [f"{tmp / 'train.yaml'}: unknown task 'nosuch'", "tasks.yaml defines: asr"]
    return ex


@case("train-task-answer-for-unknown-utterance")
def _(tmp):
    put(tmp / "train" / "intent", "u1 greet\nu7 deny\n")
    ex = train(tmp, config=TRAIN_YAML + "tasks: [asr, intent]\n")
    ex.says = [f"{tmp / 'train' / 'intent'}:2: ", "'u7'"]
    return ex


@case("train-lexicon-malformed")
def _(tmp):
    lex = put(tmp / "lexicon.txt", "hello h ə l oʊ\n")
    ex = train(tmp, more=("--lexicon", lex))
    ex.says = [f"{lex}:1: "]
    return ex


@case("train-units-unknown-symbol")
def _(tmp):
    ex = train(tmp, units="u1 h ə QQ oʊ\nu2 j ɛ s\n", text="u1 hello\nu2 yes\n")
    ex.says = [f"{tmp / 'dump' / 'units'}:1: ", "'QQ'"]
    return ex


@case("train-units-id-not-in-text")
def _(tmp):
    ex = train(tmp, units="u1 h ə l oʊ\nu9 j ɛ s\n")
    ex.says = [f"{tmp / 'dump' / 'units'}:2: ", "'u9'"]
    return ex


@case("train-checkpoint-truncated")
def _(tmp):
    import torch

    ck = tmp / "exp" / "checkpoints" / "step0000001.pt"
    ck.parent.mkdir(parents=True)
    torch.save({"model": {}, "step": 1}, ck)
    put(ck, ck.read_bytes()[:64])
    ex = train(tmp)
    ex.rc = None  # an error, or a logged skip of the damaged checkpoint: either names it
    ex.says = [str(ck)]
    return ex
