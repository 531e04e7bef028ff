"""Task layer: registry YAML and its errors, per-task answer files, task metrics, per-example prompts."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
import torch
from test_model import ToyTokenizer, V, tiny_model

from tasu.config import TrainConfig
from tasu.data import DataError, read_targets, write_data_dir
from tasu.model import IGNORE
from tasu.prompt import PromptTemplate
from tasu.score import (
    METRICS,
    extract_choice,
    score_accuracy,
    score_bleu,
    score_mc_accuracy,
    score_metric,
    score_texts,
)
from tasu.tasks import DEFAULT_TASKS_FILE, Task, load_tasks, score_task

TOP = Path(__file__).resolve().parents[1]

GOOD = """\
asr:
  prompts: ["Transcribe the speech.\\n<speech>"]
  system_prompt: You transcribe English speech.
  target: text
  metric: wer
intent:
  prompts:
    - "Intent?\\n<speech>"
    - "<speech>\\nWhich intent?"
  target: intent
  metric: accuracy
  labels: [alarm_set, weather_query]
mcq:
  prompts: "Pick one.\\n<speech>"
  target: answer
  metric: mc_accuracy
  labels: labels.txt
"""


def _registry(tmp_path: Path, text: str, labels: str | None = "A\nB\nC\n") -> Path:
    if labels is not None:
        (tmp_path / "labels.txt").write_text(labels)
    p = tmp_path / "tasks.yaml"
    p.write_text(text)
    return p


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def test_default_registry_keeps_the_asr_prompt_of_existing_models():
    reg = load_tasks()
    assert reg.path == DEFAULT_TASKS_FILE and {"asr", "intent", "mcq"} <= set(reg.names)
    asr, cfg = reg["asr"], TrainConfig()
    assert (asr.prompts, asr.system_prompt, asr.target, asr.metric) == (
        (cfg.task_prompt,), cfg.system_prompt, "text", "wer")
    tok = ToyTokenizer()
    assert asr.template(tok) == PromptTemplate.build(tok, cfg.task_prompt, cfg.system_prompt)
    assert (reg["intent"].target, reg["intent"].metric) == ("intent", "accuracy")
    assert (reg["mcq"].target, reg["mcq"].metric, reg["mcq"].labels) == ("answer", "mc_accuracy", tuple("ABCD"))
    assert {t.metric for t in reg} <= set(METRICS)


def test_load_registry_prompts_labels_and_templates(tmp_path):
    reg = load_tasks(_registry(tmp_path, GOOD))
    assert reg.names == ["asr", "intent", "mcq"] and len(reg) == 3 and "intent" in reg
    intent = reg.get("intent")
    assert intent.prompts == ("Intent?\n<speech>", "<speech>\nWhich intent?")
    assert intent.prompt == intent.prompts[0] and intent.system_prompt is None
    assert intent.labels == ("alarm_set", "weather_query")
    assert reg["mcq"].prompts == ("Pick one.\n<speech>",)          # one string is one prompt
    assert reg["mcq"].labels == ("A", "B", "C")                    # from labels.txt next to the YAML
    tok = ToyTokenizer()
    t0, t1 = intent.templates(tok)
    assert t0 == intent.template(tok) and t0 != t1
    assert list(t1.prefix) == tok("")["input_ids"] and list(t1.suffix) == tok("\nWhich intent?\nAnswer:")["input_ids"]


@pytest.mark.parametrize("entry,words", [
    ("  prompts: ['<speech>']\n  target: text\n  metric: wer\n  promt: x\n", "task 'bad': unknown key 'promt'"),
    ("  prompts: ['<speech>']\n  target: text\n  metric: rouge\n",
     "task 'bad': unknown metric 'rouge' (known: wer, cer"),
    ("  prompts: ['Say it.']\n  target: text\n  metric: wer\n",
     "task 'bad': prompt 1 'Say it.' must hold the <speech>"),
    ("  prompts: ['<speech>', '<speech><speech>']\n  target: text\n  metric: wer\n", "prompt 2"),
    ("  prompts: []\n  target: text\n  metric: wer\n", "task 'bad': prompts must be"),
    ("  target: text\n  metric: wer\n", "task 'bad': missing key 'prompts'"),
    ("  prompts: ['<speech>']\n  metric: wer\n", "task 'bad': missing key 'target'"),
    ("  prompts: ['<speech>']\n  target: text\n", "task 'bad': missing key 'metric'"),
    ("  prompts: ['<speech>']\n  target: ../intent\n  metric: wer\n", "task 'bad': target '../intent'"),
    ("  prompts: ['<speech>']\n  target: wav.scp\n  metric: wer\n", "task 'bad': target 'wav.scp'"),
    ("  prompts: ['<speech>']\n  target: t\n  metric: accuracy\n  labels: [a, b, a]\n", "duplicate label(s) a"),
    ("  prompts: ['<speech>']\n  target: t\n  metric: accuracy\n  labels: []\n", "labels must be"),
    ("  prompts: ['<speech>']\n  target: t\n  metric: mc_accuracy\n  labels: [A, bb]\n",
     "option letters A-Z; got 'bb'"),
    ("  prompts: ['<speech>']\n  target: t\n  metric: accuracy\n  labels: nope.txt\n", "cannot read labels file"),
    ("  prompts: ['<speech>']\n  target: t\n  metric: wer\n  system_prompt: [x]\n", "system_prompt must be"),
    ("  just a string\n", "task 'bad': expected a mapping"),
])
def test_registry_errors_name_the_file_and_the_task(tmp_path, entry, words):
    p = _registry(tmp_path, GOOD + "bad:\n" + entry)
    with pytest.raises(ValueError) as exc:
        load_tasks(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: ") and words in msg, msg


def test_registry_file_level_errors(tmp_path):
    p = _registry(tmp_path, GOOD + "asr:\n  prompts: ['<speech>']\n  target: text\n  metric: cer\n")
    with pytest.raises(ValueError, match=r"tasks.yaml: invalid YAML.*duplicate key 'asr' \(first on line 1\)"):
        load_tasks(p)
    p.write_text("")
    with pytest.raises(ValueError, match="tasks.yaml: expected a mapping"):
        load_tasks(p)
    p.write_text("asr: [unclosed\n")
    with pytest.raises(ValueError, match="tasks.yaml: invalid YAML"):
        load_tasks(p)
    p.write_text("'bad name':\n  prompts: ['<speech>']\n  target: text\n  metric: wer\n")
    with pytest.raises(ValueError, match="tasks.yaml: bad task name 'bad name'"):
        load_tasks(p)
    with pytest.raises(FileNotFoundError, match="nope.yaml: task registry not found"):
        load_tasks(tmp_path / "nope.yaml")
    (tmp_path / "labels.txt").write_text("A\nB\nA\n")
    with pytest.raises(ValueError, match=r"labels.txt:3: duplicate label 'A' \(first on line 1\)"):
        load_tasks(_registry(tmp_path, GOOD, labels=None))


def test_unknown_task_lists_the_known_ones(tmp_path):
    reg = load_tasks(_registry(tmp_path, GOOD))
    with pytest.raises(ValueError) as exc:
        reg.get("slu", where="conf/train.yaml")
    assert str(exc.value) == f"conf/train.yaml: unknown task 'slu'; {reg.path} defines: asr, intent, mcq"
    with pytest.raises(ValueError, match="unknown task 'x'"):
        reg["x"]


# ---------------------------------------------------------------------------
# Answer files in data dirs
# ---------------------------------------------------------------------------


def _data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    write_data_dir(d, text={"u1": "wake me at six", "u2": "is it raining", "u3": "set an alarm"})
    return d


def _raises(path: Path, line: int | None, fn, *args) -> str:
    with pytest.raises(DataError) as exc:
        fn(*args)
    msg = str(exc.value)
    loc = f"{path}:{line}: " if line else f"{path}: "
    assert msg.startswith(loc), msg
    return msg


def test_read_targets_good(tmp_path):
    d = _data(tmp_path)
    (d / "intent").write_text("u1 alarm_set\nu2 weather_query\nu3 alarm_set\n")
    labels = ["alarm_set", "weather_query"]
    assert read_targets(d, "intent", labels) == {"u1": "alarm_set", "u2": "weather_query", "u3": "alarm_set"}
    assert read_targets(d, "text")["u2"] == "is it raining"
    intent = Task("intent", ("<speech>",), "intent", "accuracy", labels=tuple(labels))
    assert intent.read_targets(d) == read_targets(d, "intent")


@pytest.mark.parametrize("content,line,words", [
    ("u1 alarm_set\nu2 weather_query\nu4 alarm_set\n", 3, "utterance 'u4' is not in text"),
    ("u1 alarm_set\nu2\nu3 alarm_set\n", 2, "key 'u2' has an empty value"),
    ("u1 alarm_set\nu2 play_music\nu3 alarm_set\n", 2, "label 'play_music' of 'u2' is not one of the 2 labels"),
    ("u2 alarm_set\nu1 weather_query\nu3 alarm_set\n", 2, "not sorted"),
    ("u1 alarm_set\nu1 alarm_set\nu3 alarm_set\n", 2, "duplicate key 'u1'"),
    ("u1 alarm_set\nu3 alarm_set\n", None, "1 utterance(s) have no answer (first: 'u2' from"),
])
def test_read_targets_errors_name_file_and_line(tmp_path, content, line, words):
    d = _data(tmp_path)
    (d / "intent").write_text(content)
    msg = _raises(d / "intent", line, read_targets, d, "intent", ["alarm_set", "weather_query"])
    assert words in msg


def test_read_targets_missing_file_and_non_answer_file(tmp_path):
    d = _data(tmp_path)
    assert "answer file is missing" in _raises(d / "answer", None, read_targets, d, "answer")
    with pytest.raises(ValueError, match="'utt2spk' is not an answer file"):
        read_targets(d, "utt2spk")


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def test_accuracy_hand_computed():
    refs = {"a": "alarm_set", "b": "Weather query", "c": "play_music", "d": "x"}
    hyps = {"a": "alarm_set", "b": "weather query.", "c": "play_radio", "z": "extra"}  # d missing
    s = score_accuracy(refs, hyps)
    assert (s.metric, s.n_utts, s.n_correct, s.n_missing_hyp, s.n_extra_hyp) == ("accuracy", 4, 2, 1, 1)
    assert s.value == 50.0
    assert s.errors == (("c", "play_music", "play_radio"), ("d", "x", ""))


@pytest.mark.parametrize("hyp,letter", [
    ("The answer is (B).", "B"), ("b", "B"), ("B", "B"), ("(c)", "C"), ("D.", "D"),
    ("B. Paris", "B"), ("b) Paris", "B"), ("answer: c", "C"), ("Option D is right", "D"),
    ("I pick C because it fits", "C"), ("the answer is b", "B"),
    ("no letter here", None), ("", None), ("A or B", None), ("(E)", None),
    ("the answer is a cat", None),
])
def test_extract_choice(hyp, letter):
    assert extract_choice(hyp) == letter


def test_extract_choice_other_letters():
    assert extract_choice("(E)", "ABCDE") == "E" and extract_choice("e", "abcde") == "E"


def test_mc_accuracy():
    refs = {"1": "B", "2": "(A)", "3": "C", "4": "D"}
    hyps = {"1": "The answer is (B).", "2": "a", "3": "I don't know", "4": "The answer is (C)."}
    s = score_mc_accuracy(refs, hyps)
    assert (s.value, s.n_correct, s.n_utts) == (50.0, 2, 4)
    assert s.errors == (("3", "C", "I don't know"), ("4", "D", "The answer is (C)."))
    with pytest.raises(ValueError, match="reference of '1' .* names none of the options A, B, C, D"):
        score_mc_accuracy({"1": "maybe"}, {"1": "A"})


def test_bleu_hand_computed_and_against_sacrebleu():
    # 1-4 gram precisions 5/6, 3/5, 2/4, 1/3, same length (BP = 1): BLEU = (1/12) ** (1/4)
    s = score_bleu({"u": "the cat sat on the mat"}, {"u": "the cat sat on a mat"})
    assert s.metric == "bleu" and s.n_utts == 1 and s.value == pytest.approx(100 * (1 / 12) ** 0.25)
    assert "tok:13a" in s.detail
    refs = {"a": "the cat sat on the mat", "b": "it is raining  today", "c": "open the window please"}
    hyps = {"a": "the cat sat on a mat", "b": "it is raining today", "z": "ignored"}  # c missing -> empty
    s = score_bleu(refs, hyps)
    expected = sacrebleu.corpus_bleu(["the cat sat on a mat", "it is raining today", ""],
                                     [["the cat sat on the mat", "it is raining today", "open the window please"]])
    assert s.value == pytest.approx(expected.score) and (s.n_missing_hyp, s.n_extra_hyp) == (1, 1)


def test_score_metric_and_score_task_dispatch():
    refs, hyps = {"a": "the cat sat", "b": "a dog"}, {"a": "the cat sit", "b": "a dog"}
    r = score_texts(refs, hyps)
    assert score_metric("wer", refs, hyps).value == r.wer and score_metric("cer", refs, hyps).value == r.cer
    assert score_metric("accuracy", refs, hyps).value == 50.0
    with pytest.raises(ValueError, match="unknown metric 'rouge'"):
        score_metric("rouge", refs, hyps)
    reg = load_tasks()
    assert score_task(reg["asr"], refs, hyps).value == r.wer
    assert score_task(reg["intent"], {"a": "alarm_set"}, {"a": "Alarm_set"}).value == 100.0
    e_task = Task("mc5", ("<speech>",), "answer", "mc_accuracy", labels=tuple("ABCDE"))
    assert score_task(e_task, {"a": "E"}, {"a": "(E)"}).value == 100.0
    assert score_task(reg["mcq"], {"a": "D"}, {"a": "(E)"}).value == 0.0
    assert math.isclose(score_task(reg["translate"], {"a": "le chat est noir"}, {"a": "le chat est noir"}).value, 100.0)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasu.bin.score", *args], cwd=TOP, capture_output=True, text=True)


def test_score_cli_by_metric_and_task(tmp_path):
    ref = tmp_path / "data" / "intent"
    ref.parent.mkdir()
    ref.write_text("u1 alarm_set\nu2 weather_query\nu3 alarm_set\nu4 play_music\n")
    hyp = tmp_path / "hyp"
    hyp.write_text("u1 alarm_set\nu2 Weather_Query\nu3 play_music\n")
    out = tmp_path / "dec" / "result.txt"
    r = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--metric", "accuracy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "data: %ACC 50.00 [ 2 / 4 ]" and "1 missing hyp" in r.stderr
    text = out.read_text()
    assert "Metric: accuracy" in text and "%ACC 50.00 [ 2 / 4 ]" in text
    assert "id: (u3)\nREF: alarm_set\nHYP: play_music\n" in text and "id: (u4)\nREF: play_music\nHYP: ***\n" in text
    summary = json.loads((out.parent / "score.json").read_text())
    assert summary | {"ref": None, "hyp": None} == {
        "set": "data", "ref": None, "hyp": None, "metric": "accuracy", "value": 50.0, "n_utts": 4,
        "n_missing_hyp": 1, "n_extra_hyp": 0, "n_correct": 2}
    # by task: the metric and the option letters come from the registry
    ref.write_text("u1 A\nu2 C\n")
    hyp.write_text("u1 The answer is (A).\nu2 b\n")
    r = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--task", "mcq", "--set-name", "t")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "t: %MC-ACC 50.00 [ 1 / 2 ]"
    assert json.loads((out.parent / "score.json").read_text())["task"] == "mcq"
    r = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--task", "slu")
    assert r.returncode == 1 and re.search(r"--task: unknown task 'slu'; .*tasks.yaml defines: asr, intent", r.stderr)
    r = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--task", "mcq", "--metric", "bleu")
    assert r.returncode == 1 and "contradicts task 'mcq'" in r.stderr
    r = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--metric", "accuracy", "--units")
    assert r.returncode == 1 and "--units" in r.stderr
    # RESULTS.md: task metrics get a table of their own
    r = _cli("--results-md", str(tmp_path / "R.md"), "--decode-dirs", str(out.parent), "--model", "m")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "R.md").read_text()
    assert "| set | task | #utts | metric | value (%) | model | date |" in md
    assert re.search(r"\| t \| mcq \| 2 \| mc_accuracy \| 50\.00 \| m \| \d{4}-\d\d-\d\d \|", md)
    assert "| Snt | Wrd | Corr |" in md  # the transcription table is there (empty) too


def test_score_cli_asr_task_is_the_wer_path(tmp_path):
    ref, hyp = tmp_path / "set" / "text", tmp_path / "hyp"
    ref.parent.mkdir()
    ref.write_text("u1 the cat sat\n")
    hyp.write_text("u1 the cat sit\n")
    outs = []
    for extra in ([], ["--task", "asr"], ["--metric", "wer"]):
        out = tmp_path / f"d{len(outs)}" / "result.txt"
        r = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(out), *extra)
        assert r.returncode == 0 and r.stdout == "set: WER 33.33 % CER 9.09 % (1 utts)\n", r.stderr
        outs.append((out.read_text(), (out.parent / "score.json").read_text()))
    assert outs[0] == outs[1] == outs[2]


# ---------------------------------------------------------------------------
# Per-example prompt templates in the model
# ---------------------------------------------------------------------------


def test_per_example_templates_embed_their_own_prompt_and_mask_labels():
    m, own = tiny_model()
    other = PromptTemplate.build(ToyTokenizer(), "Intent of <speech> please", "classify")
    assert other.prefix != own.prefix and other.suffix != own.suffix
    emb = m.base.get_input_embeddings()
    feats = [torch.rand(4, V), torch.rand(3, V)]
    answers = [[7, 8, 2], [9, 2]]
    templates = [own, other]
    x, mask, y = m.assemble(feats, answers, templates=templates)
    for i, (f, tpl, ans) in enumerate(zip(feats, templates, answers)):
        P, S, n = len(tpl.prefix), len(tpl.suffix), len(f)
        L = P + n + S + len(ans)
        assert mask[i].sum() == L and (y[i, L:] == IGNORE).all()
        torch.testing.assert_close(x[i, :P], emb(torch.tensor(tpl.prefix)))
        torch.testing.assert_close(x[i, P:P + n], m.projector(f))
        torch.testing.assert_close(x[i, P + n:P + n + S], emb(torch.tensor(tpl.suffix)))
        assert (y[i, :P + n + S] == IGNORE).all() and y[i, P + n + S:L].tolist() == ans
    # the loss covers the answer tokens only: it equals the loss from full logits at the labels
    loss, n_tok = m(feats, answers, templates=templates)
    logits = m.base(inputs_embeds=x, attention_mask=mask).logits
    ref = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 100), y[:, 1:].reshape(-1),
                                            ignore_index=IGNORE)
    assert n_tok == 5
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    # ... and differs from the loss with the model's own prompt for both
    assert not torch.equal(loss, m(feats, answers)[0])
    with pytest.raises(ValueError, match="1 prompt templates for 2 examples"):
        m.assemble(feats, answers, templates=[own])


@pytest.mark.parametrize("left_pad", [False, True])
def test_templates_none_is_the_models_own_template(left_pad):
    m, own = tiny_model()
    feats = [torch.rand(5, V), torch.rand(2, V)]
    answers = [[7, 8, 2], [9, 2]]
    a = m.assemble(feats, answers, left_pad=left_pad)
    b = m.assemble(feats, answers, left_pad=left_pad, templates=[own, own])
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert torch.equal(m(feats, answers)[0], m(feats, answers, templates=[own, own])[0])
    assert m.generate(feats, max_new_tokens=4) == m.generate(feats, max_new_tokens=4, templates=[own, own])


def test_generate_with_per_example_templates_and_end_tokens():
    m, own = tiny_model()
    tok = ToyTokenizer()
    other = PromptTemplate.build(tok, "Q <speech>", None)
    feats = [torch.rand(4, V), torch.rand(2, V)]
    mixed = m.generate(feats, max_new_tokens=4, templates=[own, other])
    assert mixed[0] == m.generate(feats[:1], max_new_tokens=4)[0]            # row 0 keeps its own prompt
    assert mixed[1] == m.generate(feats[1:], max_new_tokens=4, templates=[other])[0]
    # a template with another end token: each row's answer stops at either
    first = m.generate(feats[:1], max_new_tokens=4)[0]
    assert first                                                                # the toy model says something
    stop = PromptTemplate(own.prefix, own.suffix, eos_id=first[0])
    out = m.generate(feats, max_new_tokens=4, templates=[stop, own])
    assert out[0] == [] and all(first[0] not in h for h in out)


def test_decode_posteriors_with_a_task_template():
    import numpy as np

    from tasu.decode import decode_posteriors

    m, own = tiny_model()
    m.tokenizer = type("Tok", (), {"decode": staticmethod(lambda ids, skip_special_tokens: " ".join(map(str, ids)))})
    other = PromptTemplate.build(ToyTokenizer(), "Q <speech>", None)
    items = [("u1", np.random.rand(4, V).astype(np.float32)), ("u2", np.random.rand(2, V).astype(np.float32))]
    feats = [torch.from_numpy(f) for _, f in items]
    got = decode_posteriors(m, items, batch_size=2, max_new_tokens=3, template=other)
    want = m.generate(feats, max_new_tokens=3, templates=[other, other])
    assert got == {u: " ".join(map(str, h)) for (u, _), h in zip(items, want)}
    assert decode_posteriors(m, items, batch_size=2, max_new_tokens=3) == {
        u: " ".join(map(str, h)) for (u, _), h in zip(items, m.generate(feats, max_new_tokens=3))}


# ---------------------------------------------------------------------------
# A corpus's own metric, normaliser and metric options (no library edit)
# ---------------------------------------------------------------------------

OWN = """\
slu:
  prompts: ["<speech>"]
  target: intent
  metric: local/metric.py:first_word_accuracy
  metric_options: {weight: 2}
asr_num:
  prompts: ["<speech>"]
  target: text
  metric: wer
  metric_options: {normalizer: local/metric.py:digits_to_words}
zh:
  prompts: ["<speech>"]
  target: translation
  metric: bleu
  metric_options: {tokenize: zh}
"""

METRIC_PY = """\
def first_word_accuracy(refs, hyps, weight=1):
    ok = sum(hyps.get(u, "").split()[:1] == r.split()[:1] for u, r in refs.items())
    return weight * 50.0 * ok / len(refs)

def digits_to_words(text):
    return " ".join({"1": "one", "2": "two"}.get(w, w) for w in text.lower().split())
"""


def own_registry(tmp_path):
    (tmp_path / "conf" / "local").mkdir(parents=True)
    (tmp_path / "conf" / "local" / "metric.py").write_text(METRIC_PY)
    (tmp_path / "conf" / "tasks.yaml").write_text(OWN)
    return tmp_path / "conf" / "tasks.yaml"


def test_a_corpus_brings_its_own_metric_normaliser_and_bleu_tokenizer(tmp_path):
    reg = load_tasks(own_registry(tmp_path))
    slu = reg.get("slu")
    res = score_task(slu, {"a": "alarm set", "b": "play music"}, {"a": "alarm x", "b": "stop"})
    assert res.metric == "first_word_accuracy" and res.value == 50.0 and res.n_utts == 2  # weight 2 x 25 %
    res = score_task(reg.get("asr_num"), {"a": "press one then two"}, {"a": "Press 1 then 2"})
    assert res.value == 0.0 and score_metric("wer", {"a": "press one then two"}, {"a": "Press 1 then 2"}).value > 0
    refs, hyps = {"a": "我们今天去公园散步"}, {"a": "我们今天去公园"}
    res = score_task(reg.get("zh"), refs, hyps)
    want = sacrebleu.corpus_bleu([hyps["a"]], [[refs["a"]]], tokenize="zh").score
    assert math.isclose(res.value, want) and res.value != score_bleu(refs, hyps).value  # 13a sees one word
    assert "tok:zh" in res.detail


@pytest.mark.parametrize("entry,words", [
    ("metric: local/nope.py:f", "nope.py not found"),
    ("metric: local/metric.py:missing", "has no function 'missing'"),
    ("metric: no_such_package_xyz:f", "cannot load no_such_package_xyz"),
    ("metric: bleu\n  metric_options: {normalizer: local/metric.py:digits_to_words}", "takes no option normalizer"),
    ("metric: wer\n  metric_options: [1]", "metric_options must be a mapping"),
])
def test_own_metric_errors_name_the_file_and_task(tmp_path, entry, words):
    path = own_registry(tmp_path)
    path.write_text(f"t:\n  prompts: ['<speech>']\n  target: text\n  {entry}\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}: task 't'")) as e:
        load_tasks(path)
    assert words in str(e.value)


def test_score_cli_uses_the_tasks_own_metric_and_normaliser(tmp_path):
    reg = own_registry(tmp_path)
    ref, hyp = tmp_path / "set" / "text", tmp_path / "hyp"
    ref.parent.mkdir()
    ref.write_text("u1 press one\n")
    hyp.write_text("u1 press 1\n")
    out = tmp_path / "d" / "result.txt"
    r = _cli("--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--task", "asr_num", "--tasks", str(reg))
    assert r.returncode == 0 and r.stdout == "set: WER 0.00 % CER 0.00 % (1 utts)\n", r.stderr
    (tmp_path / "set" / "intent").write_text("u1 alarm set\n")
    r = _cli("--ref", str(tmp_path / "set" / "intent"), "--hyp", str(hyp), "--out", str(out), "--task", "slu",
             "--tasks", str(reg))
    assert r.returncode == 0 and r.stdout == "set: %FIRST_WORD_ACCURACY 0.00 (1 utts)\n", r.stdout + r.stderr
    assert json.loads((out.parent / "score.json").read_text())["metric"] == "first_word_accuracy"


# ---------------------------------------------------------------------------
# Prompt fields: a prompt per utterance ({question} from the data dir)
# ---------------------------------------------------------------------------

FIELDS = """\
spoken_qa:
  prompts:
    - "<speech>\\n{question}\\nA. {choice_a}\\nB. {choice_b}\\nAnswer with the letter."
  target: answer
  metric: mc_accuracy
  labels: [A, B]
"""


def test_prompt_fields_are_filled_per_utterance(tmp_path):
    path = tmp_path / "tasks.yaml"
    path.write_text(FIELDS)
    task = load_tasks(path).get("spoken_qa")
    assert task.fields == ("question", "choice_a", "choice_b")
    d = tmp_path / "mmsu"
    write_data_dir(d, wav_scp={"q1": "a.wav", "q2": "b.wav"}, extra={
        "question": {"q1": "Is the speaker happy?", "q2": "How many words?"},
        "choice_a": {"q1": "yes", "q2": "three"}, "choice_b": {"q1": "no", "q2": "four"},
        "answer": {"q1": "A", "q2": "B"}})
    fields = task.read_fields(d)
    assert fields["q2"] == {"question": "How many words?", "choice_a": "three", "choice_b": "four"}
    tok = ToyTokenizer()
    tpl = task.utterance_templates(tok, fields)
    want = PromptTemplate.build(tok, "<speech>\nHow many words?\nA. three\nB. four\nAnswer with the letter.")
    assert tpl["q2"] == want and tpl["q1"] != tpl["q2"]
    with pytest.raises(ValueError, match=r"prompt field \{question\} has no value"):
        task.template(tok)
    with pytest.raises(ValueError, match="holds <speech>"):
        task.template(tok, values=dict(fields["q1"], question="say <speech>"))
    (d / "choice_b").write_text("q1 no\n")  # q2 has no line: a file:line-style error naming the file
    with pytest.raises(DataError, match="choice_b"):
        task.read_fields(d)
    path.write_text(FIELDS.replace("{choice_b}", "{answer}"))
    with pytest.raises(ValueError, match=r"prompt field \{answer\} must name a data-dir file of its own"):
        load_tasks(path)


def test_decode_posteriors_with_a_prompt_per_utterance():
    import numpy as np

    from tasu.decode import decode_posteriors

    m, own = tiny_model()
    m.tokenizer = type("Tok", (), {"decode": staticmethod(lambda ids, skip_special_tokens: " ".join(map(str, ids)))})
    tok = ToyTokenizer()
    per = {"u1": PromptTemplate.build(tok, "Q <speech>", None), "u2": PromptTemplate.build(tok, "R S <speech> T", None)}
    items = [("u1", np.random.rand(4, V).astype(np.float32)), ("u2", np.random.rand(2, V).astype(np.float32))]
    feats = [torch.from_numpy(f) for _, f in items]
    got = decode_posteriors(m, items, batch_size=2, max_new_tokens=3, template=per)
    want = m.generate(feats, max_new_tokens=3, templates=[per["u1"], per["u2"]])
    assert got == {u: " ".join(map(str, h)) for (u, _), h in zip(items, want)}
    with pytest.raises(ValueError, match="no prompt for utterance 'u2'"):
        decode_posteriors(m, items, batch_size=2, max_new_tokens=3, template={"u1": per["u1"]})
