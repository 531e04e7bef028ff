"""Task registry: what to ask the LLM, where the answer comes from, how it is scored.

A registry is a YAML mapping ``task name -> entry`` (the default is
``tasu/conf/tasks.yaml``); adding a task is adding an entry::

    intent:
      prompts:                     # one or more, each holding <speech> once;
        - "What does the speaker want?\\n<speech>"   # training may pick any, decoding uses the first
                                   # {name}: a prompt field, the utterance's line of the data-dir
                                   # file <name> (e.g. {question}, per spoken question)
      system_prompt: You label the intent of English speech.   # optional
      target: intent               # the data-dir file holding the answers (like `text`)
      metric: accuracy             # wer | cer | accuracy | bleu | mc_accuracy, or a corpus's own
                                   # function: local/metric.py:slu_f1 (relative to the YAML file)
                                   # or package.module:function
      metric_options:              # optional, passed to the metric: bleu {tokenize: zh, lowercase},
        normalizer: local/norm.py:normalize   # wer/cer/accuracy {normalizer: a str -> str function}
      labels: [alarm_set, ...]     # optional closed label set, or a file name (one label a line,
                                   # relative to the YAML file)
      description: SLURP-style intent classification   # optional

A metric function is called as ``fn(refs, hyps, **metric_options)`` with ``{uttid: text}``
dicts and returns a :class:`tasu.score.TaskScore` or a number; a corpus brings it (and its
normaliser) in its recipe dir, without editing the library.

Every problem raises ``ValueError`` naming the YAML file and the task.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasu.prompt import SPEECH_PLACEHOLDER, PromptTemplate
from tasu.score import METRIC_OPTIONS, METRICS, TaskScore, score_metric

__all__ = ["DEFAULT_TASKS_FILE", "Task", "TaskRegistry", "load_tasks", "resolve_function", "score_task"]

#: The registry shipped with the package.
DEFAULT_TASKS_FILE = Path(__file__).resolve().parent / "conf" / "tasks.yaml"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Data-dir files that are not answers.
#: A prompt field: ``{name}`` (letters, digits, ``_``; not starting with a digit).
FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_TARGETS = ("wav.scp", "utt2spk", "spk2utt", "segments", "feats.scp", "reco2dur", "utt2dur")


@dataclass(frozen=True)
class Task:
    """One task: prompts, answer file, metric and (optionally) a closed label set."""

    name: str
    prompts: tuple[str, ...]
    target: str
    metric: str
    system_prompt: str | None = None
    labels: tuple[str, ...] | None = None
    description: str = ""
    metric_options: Mapping[str, Any] = field(default_factory=dict)  # functions resolved
    metric_fn: Callable[..., Any] | None = None  # a corpus's own metric (``metric`` is its spec)

    @property
    def prompt(self) -> str:
        """The prompt used for decoding (the first)."""
        return self.prompts[0]

    @property
    def fields(self) -> tuple[str, ...]:
        """The prompt fields (``{name}`` in any prompt), in order of first use: each is filled per
        utterance from the data-dir file of that name."""
        return tuple(dict.fromkeys(n for p in self.prompts for n in FIELD_RE.findall(p)))

    def template(self, tokenizer, index: int = 0, values: Mapping[str, str] | None = None) -> PromptTemplate:
        """The prompt template of prompt ``index`` (0: the decoding prompt), its fields filled
        from ``values`` (``{field: text}``; every field of the prompt is needed)."""
        prompt = self.prompts[index]
        if self.fields:
            missing = [n for n in FIELD_RE.findall(prompt) if values is None or n not in values]
            if missing:
                raise ValueError(f"task {self.name!r}: prompt field {{{missing[0]}}} has no value "
                                 f"(fields come from the data dir's {', '.join(self.fields)} files)")
            bad = [n for n in self.fields if n in values and SPEECH_PLACEHOLDER in values[n]]
            if bad:
                raise ValueError(f"task {self.name!r}: the value of field {{{bad[0]}}} holds {SPEECH_PLACEHOLDER}")
            prompt = FIELD_RE.sub(lambda m: values[m.group(1)], prompt)
        return PromptTemplate.build(tokenizer, prompt, self.system_prompt)

    def templates(self, tokenizer, values: Mapping[str, str] | None = None) -> tuple[PromptTemplate, ...]:
        """One template per prompt, in order (training may pick any of them)."""
        return tuple(self.template(tokenizer, i, values) for i in range(len(self.prompts)))

    def read_fields(self, data_dir, utt_ids=None) -> dict[str, dict[str, str]]:
        """``{uttid: {field: text}}`` of the prompt fields, from ``<data_dir>/<field>`` (table files
        like ``text``, checked: every utterance of the data dir, or of ``utt_ids``, needs a line)."""
        from tasu.data import read_targets

        if not self.fields:
            return {}
        tables = {n: read_targets(data_dir, n, partial=utt_ids is not None) for n in self.fields}
        out: dict[str, dict[str, str]] = {}
        for uid in (utt_ids if utt_ids is not None else next(iter(tables.values()))):
            for n, t in tables.items():
                if uid not in t:
                    raise ValueError(f"{Path(data_dir) / n}: no line for utterance {uid!r} "
                                     f"(task {self.name!r} asks {{{n}}} in its prompt)")
                out.setdefault(uid, {})[n] = t[uid]
        return out

    def utterance_templates(self, tokenizer, fields: Mapping[str, Mapping[str, str]],
                            index: int = 0) -> dict[str, PromptTemplate]:
        """``{uttid: template}``: prompt ``index`` with each utterance's fields (:meth:`read_fields`)."""
        return {u: self.template(tokenizer, index, v) for u, v in fields.items()}

    def read_targets(self, data_dir, partial: bool = False) -> dict[str, str]:
        """``{uttid: answer}`` from ``<data_dir>/<target>``, checked (see :func:`tasu.data.read_targets`)."""
        from tasu.data import read_targets

        return read_targets(data_dir, self.target, self.labels, partial=partial)


@dataclass(frozen=True)
class TaskRegistry:
    """The tasks of one YAML file, by name."""

    path: Path
    tasks: Mapping[str, Task]

    @property
    def names(self) -> list[str]:
        return list(self.tasks)

    def get(self, name: str, where: str | None = None) -> Task:
        """The task ``name``; ``where`` (e.g. a config file) prefixes the error if it is unknown."""
        if name not in self.tasks:
            at = f"{where}: " if where else ""
            raise ValueError(f"{at}unknown task {name!r}; {self.path} defines: {', '.join(self.tasks) or 'none'}")
        return self.tasks[name]

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self.tasks

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)


@dataclass
class _TaskSpec:
    """The raw YAML entry of a task (its keys are the known keys)."""

    prompts: Any = None
    system_prompt: Any = None
    target: Any = None
    metric: Any = None
    labels: Any = None
    description: Any = ""
    metric_options: Any = None


_FUNC_RE = re.compile(r"([^:\s]+):([A-Za-z_]\w*)")


def resolve_function(spec: str, base: Path, where: str) -> Callable[..., Any]:
    """The function ``file.py:name`` (relative to ``base``) or ``package.module:name``."""
    m = _FUNC_RE.fullmatch(spec) if isinstance(spec, str) else None
    if not m:
        raise ValueError(f"{where}: {spec!r} is not a function spec (file.py:function or package.module:function)")
    mod_spec, name = m.groups()
    try:
        if mod_spec.endswith(".py"):
            path = (base / mod_spec).resolve()
            if not path.is_file():
                raise ValueError(f"{where}: {path} not found (from {spec!r}, relative to {base})")
            spec_ = importlib.util.spec_from_file_location(f"tasu_task_{path.stem}_{abs(hash(path))}", path)
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_spec)
    except ValueError:
        raise
    except Exception as e:  # the user's module failed to import: say which and why
        raise ValueError(f"{where}: cannot load {mod_spec} (from {spec!r}): {type(e).__name__}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"{where}: {mod_spec} has no function {name!r}")
    return fn


def _metric_options(value: Any, metric: str, custom: bool, base: Path, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{where}: metric_options must be a mapping of option names, got {value!r}")
    if not custom:
        unknown = sorted(set(value) - set(METRIC_OPTIONS[metric]))
        if unknown:
            raise ValueError(f"{where}: metric {metric} takes no option {', '.join(unknown)} "
                             f"(it takes: {', '.join(METRIC_OPTIONS[metric]) or 'none'})")
    out = dict(value)
    if "normalizer" in out:
        out["normalizer"] = resolve_function(out["normalizer"], base, f"{where}: metric_options.normalizer")
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_labels_file(path: Path, where: str) -> tuple[str, ...]:
    """One label a line (blank lines ignored)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ValueError(f"{where}: cannot read labels file {path}: {e.strerror or e}") from None
    labels = [(n, s.strip()) for n, s in enumerate(lines, start=1) if s.strip()]
    seen: dict[str, int] = {}
    for n, lab in labels:
        if lab in seen:
            raise ValueError(f"{path}:{n}: duplicate label {lab!r} (first on line {seen[lab]})")
        seen[lab] = n
    if not labels:
        raise ValueError(f"{where}: labels file {path} has no labels")
    return tuple(lab for _, lab in labels)


def _labels(value: Any, base: Path, where: str, metric: str) -> tuple[str, ...] | None:
    """The closed label set: a list, or a file name relative to the YAML file's directory."""
    if value is None:
        return None
    if isinstance(value, str):
        labels = _read_labels_file(base / value, where)
    elif isinstance(value, list) and value:
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip() for v in value):
            raise ValueError(f"{where}: every label must be a non-empty string")
        labels = tuple(str(v).strip() for v in value)
        dups = sorted({x for x in labels if labels.count(x) > 1})
        if dups:
            raise ValueError(f"{where}: duplicate label(s) {', '.join(dups)}")
    else:
        raise ValueError(f"{where}: labels must be a non-empty list or a labels file name, got {value!r}")
    if metric == "mc_accuracy":
        bad = [x for x in labels if not re.fullmatch(r"[A-Z]", x)]
        if bad:
            raise ValueError(f"{where}: mc_accuracy labels are option letters A-Z; got {', '.join(map(repr, bad))}")
    return labels


def _task(name: Any, entry: Any, path: Path) -> Task:
    """Validate one YAML entry into a :class:`Task`."""
    from tasu.config import _build  # the unknown-key check shared by every YAML config

    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"{path}: bad task name {name!r}: use letters, digits, '_', '-' and '.'")
    where = f"{path}: task {name!r}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping of keys (prompts, target, metric, ...), got {entry!r}")
    spec: _TaskSpec = _build(_TaskSpec, entry, where)
    for key in ("prompts", "target", "metric"):
        if getattr(spec, key) is None:
            raise ValueError(f"{where}: missing key {key!r}")
    prompts = [spec.prompts] if isinstance(spec.prompts, str) else spec.prompts
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"{where}: prompts must be a string or a non-empty list of strings")
    for i, p in enumerate(prompts, start=1):
        if p.count(SPEECH_PLACEHOLDER) != 1:
            raise ValueError(f"{where}: prompt {i} {p!r} must hold the {SPEECH_PLACEHOLDER} placeholder "
                             f"exactly once (it holds it {p.count(SPEECH_PLACEHOLDER)} times)")
    for n in dict.fromkeys(f for p in prompts for f in FIELD_RE.findall(p)):
        if n in _NOT_TARGETS or n == spec.target:
            raise ValueError(f"{where}: prompt field {{{n}}} must name a data-dir file of its own "
                             f"(not {', '.join(_NOT_TARGETS)} or the answer file)")
    if spec.system_prompt is not None and not isinstance(spec.system_prompt, str):
        raise ValueError(f"{where}: system_prompt must be a string")
    metric_fn = None
    if spec.metric not in METRICS:
        if not (isinstance(spec.metric, str) and ":" in spec.metric):
            raise ValueError(f"{where}: unknown metric {spec.metric!r} (known: {', '.join(METRICS)}; "
                             "or a function: file.py:function, package.module:function)")
        metric_fn = resolve_function(spec.metric, path.parent, f"{where}: metric")
    target = spec.target
    if (not isinstance(target, str) or not _NAME_RE.fullmatch(target) or target in _NOT_TARGETS):
        raise ValueError(f"{where}: target {target!r} must name an answer file of the data dir "
                         f"(e.g. text, intent, answer; not a path, not {', '.join(_NOT_TARGETS)})")
    if not isinstance(spec.description, str):
        raise ValueError(f"{where}: description must be a string")
    return Task(name=name, prompts=tuple(prompts), target=target, metric=spec.metric,
                system_prompt=spec.system_prompt or None,
                labels=_labels(spec.labels, path.parent, where, spec.metric), description=spec.description,
                metric_options=_metric_options(spec.metric_options, spec.metric, metric_fn is not None, path.parent,
                                               where),
                metric_fn=metric_fn)


def load_tasks(path: str | os.PathLike[str] | None = None) -> TaskRegistry:
    """Load and validate a task registry (default: :data:`DEFAULT_TASKS_FILE`)."""
    p = Path(path) if path is not None else DEFAULT_TASKS_FILE
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: task registry not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: invalid YAML: {e}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{p}: expected a mapping 'task name -> entry' with at least one task")
    return TaskRegistry(p, {name: _task(name, entry, p) for name, entry in data.items()})


def score_task(task: Task, refs: Mapping[str, str], hyps: Mapping[str, str]) -> TaskScore:
    """Score by ``task.metric`` (a :class:`tasu.tasks.Task`; its labels are the mc options) with its
    ``metric_options``."""
    return score_metric(task.metric_fn or task.metric, refs, hyps,
                        task.labels if task.metric == "mc_accuracy" else None, task.metric_options)
