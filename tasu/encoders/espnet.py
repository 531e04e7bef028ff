"""ESPnet2 ASR models with a CTC branch (``espnet:<packed zip or dir>``).

The model is built by ``espnet2.tasks.asr.ASRTask.build_model_from_file`` from its training
``config.yaml`` and weights (``*.pth``). Where they are:

- a packed zip or its unpacked dir with ``meta.yaml`` (``espnet_model_zoo`` layout:
  ``yaml_files: {asr_train_config: exp/.../config.yaml}``, ``files: {asr_model_file: exp/.../*.pth}``);
- a dir holding ``config.yaml`` and exactly one ``*.pth`` (an ESPnet exp dir), or a dir with
  one ``exp/**/config.yaml`` next to a ``*.pth``.

Zips are extracted once into ``$TASU_CACHE/espnet/<name>-<sha256 prefix>``. Relative paths in
the config (``bpemodel``, ``normalize_conf.stats_file``) are resolved against the model root.
Units are the config's ``token_list`` (blank ``<blank>``); frame log-posteriors are
``model.ctc.log_softmax(model.encode(speech))``. Text -> units: the ``bpemodel`` sentencepiece
model (``token_type: bpe``) or characters (``token_type: char``, space = ``<space>``), with the
OOV policy of :mod:`tasu.encoders.spm` (``map`` -> ``<unk>``).

``espnet2.tasks.asr`` imports ``torchaudio`` (BEATs encoder) and ``g2p_en`` (phoneme tokenizers)
at module level although CTC ASR models do not use them; when they are not installed, they are
replaced by placeholders while espnet2 is imported (any use raises ``ImportError``).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import types
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from tasu.encoders.base import (
    BatchCTCEncoder,
    check_oov_policy,
    resample,
    resolve_device,
)
from tasu.encoders.spm import SentencePieceUnits
from tasu.units import UnitInventory

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the espnet encoder needs ESPnet2: pip install espnet espnet_model_zoo "
    "(espnet pins its own torch; to keep the installed one: pip install --no-deps espnet "
    "espnet_model_zoo plus the pure-python packages tools/install.sh --espnet installs)")
# imported by espnet2.tasks.asr at module level, unused by CTC ASR models
PLACEHOLDER_PACKAGES = ("torchaudio", "g2p_en")


class _Missing:
    """Stands for an attribute of a package that is not installed; any use raises."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(f"{self._name} is not available: its package is not installed "
                          f"(tasu imports espnet2 without {self._name.split('.')[0]})")

    def __getattr__(self, attr: str) -> _Missing:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self._name}.{attr}")

    def __mro_entries__(self, bases: tuple) -> tuple:  # ``class X(torchaudio.Y)`` at import time
        return (object,)


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self.__name__}.{attr}")


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = set(roots)

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _PlaceholderModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # type: ignore[attr-defined]


@contextmanager
def _placeholders(packages: Sequence[str]) -> Iterator[list[str]]:
    """Placeholder modules for the ``packages`` that are not installed, only inside the block."""
    missing = [p for p in packages if p not in sys.modules and importlib.util.find_spec(p) is None]
    if missing and importlib.util.find_spec("transformers") is not None:
        # espnet2 imports transformers: let it record the real package availability first
        importlib.import_module("transformers.utils.import_utils")
    finder = _PlaceholderFinder(missing)
    if missing:
        sys.meta_path.insert(0, finder)
    try:
        yield missing
    finally:
        if missing:
            sys.meta_path.remove(finder)
            for name in [n for n in sys.modules if n.split(".")[0] in finder.roots]:
                del sys.modules[name]  # later imports see the real state again


def import_asr_task() -> Any:
    """``espnet2.tasks.asr.ASRTask``, or an ImportError naming the install."""
    if importlib.util.find_spec("espnet2") is None:
        raise ImportError(INSTALL_HINT)
    with _placeholders(PLACEHOLDER_PACKAGES):
        try:
            from espnet2.tasks.asr import ASRTask
        except ImportError as e:
            raise ImportError(f"espnet2 is installed but `import espnet2.tasks.asr` fails: {e}. "
                              f"{INSTALL_HINT}") from e
    return ASRTask


@dataclass(frozen=True)
class ESPnetModelFiles:
    """Where an ESPnet2 ASR model's files are."""

    root: Path
    config: Path
    model_file: Path


def _safe_extract(archive: Path, outdir: Path) -> None:
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{archive}: not a readable zip archive ({e})") from None
    with z:
        for info in z.infolist():
            p = PurePosixPath(info.filename)
            if p.is_absolute() or ".." in p.parts or "\\" in info.filename:
                raise ValueError(f"{archive}: member {info.filename!r} leaves the target dir; refusing to unpack")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to unpack")
        outdir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=outdir.parent, prefix=f".{outdir.name}.tmp"))
        try:
            z.extractall(tmp)
            if outdir.exists():
                shutil.rmtree(outdir)
            os.replace(tmp, outdir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _cache_dir() -> Path:
    from tasu.fileio import cache_dir

    return cache_dir() / "espnet"


def _from_meta(root: Path) -> ESPnetModelFiles:
    meta_path = root / "meta.yaml"
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{meta_path}: not valid YAML: {e}") from None
    files, yfiles = (meta or {}).get("files") or {}, (meta or {}).get("yaml_files") or {}
    config = yfiles.get("asr_train_config") or yfiles.get("train_config")
    model = files.get("asr_model_file") or files.get("model_file")
    if not config or not model:
        raise ValueError(f"{meta_path}: expected yaml_files.asr_train_config and files.asr_model_file "
                         f"(espnet_model_zoo layout), got files={sorted(files)} yaml_files={sorted(yfiles)}")
    out = ESPnetModelFiles(root, root / config, root / model)
    for p in (out.config, out.model_file):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: named in {meta_path} but missing")
    return out


def locate_model(path: str | os.PathLike[str], cache: Path | None = None) -> ESPnetModelFiles:
    """The config and weights of a packed zip or a model dir (see the module doc)."""
    src = Path(path)
    if src.is_file():
        if not zipfile.is_zipfile(src):
            raise ValueError(f"{src}: not a zip archive (expected a packed ESPnet model or a dir)")
        h = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
        root = (cache or _cache_dir()) / f"{src.stem}-{h}"
        if not root.is_dir():
            _safe_extract(src, root)
        return locate_model(root)
    if not src.is_dir():
        raise FileNotFoundError(f"ESPnet model not found: {src} (expected a packed .zip or a dir)")
    if (src / "meta.yaml").is_file():
        return _from_meta(src)
    configs = [src / "config.yaml"] if (src / "config.yaml").is_file() else sorted(src.glob("exp/**/config.yaml"))
    found = [(c, sorted(c.parent.glob("*.pth"))) for c in configs]
    found = [(c, m) for c, m in found if m]
    if not found:
        raise FileNotFoundError(f"{src}: no meta.yaml, and no config.yaml next to a *.pth "
                                f"(looked at {src / 'config.yaml'} and {src}/exp/**/config.yaml)")
    if len(found) > 1 or len(found[0][1]) > 1:
        cands = [str(m) for _, ms in found for m in ms]
        raise ValueError(f"{src}: several model files, pass one model dir: {', '.join(cands)}")
    return ESPnetModelFiles(src, found[0][0], found[0][1][0])


def _resolve_paths(value: Any, roots: Sequence[Path]) -> Any:
    """Relative path strings that exist under one of ``roots`` -> absolute paths."""
    if isinstance(value, dict):
        return {k: _resolve_paths(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_paths(v, roots) for v in value]
    if isinstance(value, str) and value and not os.path.isabs(value) and ("/" in value or "." in value):
        for r in roots:
            if (r / value).exists():
                return str((r / value).resolve())
    return value


def read_config(files: ESPnetModelFiles) -> dict[str, Any]:
    """The training config with its relative paths resolved; checks token_list and the CTC branch."""
    try:
        cfg = yaml.safe_load(files.config.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{files.config}: not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{files.config}: expected a mapping (an ESPnet2 training config)")
    roots = [files.root, *files.config.parents[:4]]
    cfg = _resolve_paths(cfg, roots)
    tl = cfg.get("token_list")
    if isinstance(tl, str):
        if not Path(tl).is_file():
            raise FileNotFoundError(f"{files.config}: token_list file {tl} not found")
        cfg["token_list"] = [ln.rstrip() for ln in Path(tl).read_text(encoding="utf-8").splitlines()]
    if not isinstance(cfg.get("token_list"), list) or not cfg["token_list"]:
        raise ValueError(f"{files.config}: no token_list (not an ESPnet2 ASR config?)")
    ctc_weight = (cfg.get("model_conf") or {}).get("ctc_weight", 0.5)
    if float(ctc_weight) == 0.0:
        raise ValueError(f"{files.config}: model_conf.ctc_weight is 0: the model has no CTC branch, "
                         f"so it gives no frame posteriors; use a model trained with ctc_weight > 0")
    return cfg


def _sample_rate(cfg: dict[str, Any]) -> int:
    fs = (cfg.get("frontend_conf") or {}).get("fs", 16000)
    if isinstance(fs, str):
        import humanfriendly

        fs = humanfriendly.parse_size(fs)
    return int(fs)


class ESPnetEncoder(BatchCTCEncoder):
    """An ESPnet2 ASR model's CTC branch as frame log-posteriors over its ``token_list``."""

    def __init__(self, path: str | os.PathLike[str], device: str = "cpu", oov: str = "fail",
                 cache: Path | None = None) -> None:
        self.oov = check_oov_policy(oov)
        self.files = locate_model(path, cache)
        self.config = read_config(self.files)
        token_list = tuple(self.config["token_list"])
        blank = "<blank>" if "<blank>" in token_list else token_list[0]
        self.inventory = UnitInventory(token_list, blank, None)
        self.sample_rate = _sample_rate(self.config)
        self.token_type = self.config.get("token_type", "bpe")
        self._oov_units: dict[str, int] = {}   # pieces outside token_list
        self._spm: SentencePieceUnits | None = None
        self.device = resolve_device(device)
        self.model = self._build(str(self.device))

    def _build(self, device: str) -> Any:
        task = import_asr_task()
        with tempfile.TemporaryDirectory() as tmp:
            resolved = Path(tmp) / "config.yaml"
            resolved.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
            try:
                model, _ = task.build_model_from_file(resolved, self.files.model_file, device)
            except (RuntimeError, KeyError, TypeError, ValueError, AssertionError) as e:
                raise RuntimeError(f"{self.files.config} / {self.files.model_file.name}: ESPnet2 cannot build "
                                   f"the model: {type(e).__name__}: {e}") from e
        if getattr(model, "ctc", None) is None or not hasattr(model, "encode"):
            raise ValueError(f"{self.files.config}: the built model ({type(model).__name__}) has no CTC "
                             f"branch, so it gives no frame posteriors")
        out_dim = model.ctc.ctc_lo.out_features
        if out_dim != self.inventory.size:
            raise ValueError(f"{self.files.model_file}: CTC layer has {out_dim} outputs, "
                             f"token_list has {self.inventory.size} units")
        model.eval()
        return model

    def log_posteriors_batch(self, waves: Sequence[np.ndarray], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Mono waveforms in [-1, 1] -> ``([B, T, V]`` log-probabilities, ``[B]`` frame counts)."""
        import torch


        ws = []
        for i, w in enumerate(waves):
            w = np.asarray(w, dtype=np.float32)
            if w.ndim != 1:
                raise ValueError(f"waveform {i}: expected mono audio, got shape {w.shape}")
            ws.append(resample(w, sample_rate, self.sample_rate))
        n = np.array([len(w) for w in ws], dtype=np.int64)
        speech = np.zeros((len(ws), max(int(n.max(initial=0)), 1)), dtype=np.float32)
        for i, w in enumerate(ws):
            speech[i, :len(w)] = w
        with torch.inference_mode():
            enc, lens = self.model.encode(torch.from_numpy(speech).to(self.device), torch.from_numpy(n).to(self.device))
            if isinstance(enc, tuple):
                enc = enc[0]
            lp = self.model.ctc.log_softmax(enc).float().cpu().numpy()
        lens = lens.cpu().numpy().astype(np.int64)
        for b, t in enumerate(lens):
            lp[b, t:] = 0.0  # padding frames are zeros (CTCEncoder.log_posteriors_batch)
        return lp, lens


    @property
    def tokenizer(self) -> SentencePieceUnits:
        if self._spm is None:
            bpe = self.config.get("bpemodel")
            if not bpe:
                raise ValueError(f"{self.files.config}: token_type bpe but no bpemodel")
            unk = "<unk>" if "<unk>" in self.inventory.units else None
            self._spm = SentencePieceUnits(Path(bpe), self.oov, unk)
        return self._spm

    @property
    def oov_counts(self) -> dict[str, int]:
        """What the OOV policy dropped or mapped: pieces outside ``token_list`` and characters
        the sentencepiece model does not know (make_units logs them)."""
        out = dict(self._oov_units)
        for c, n in (self._spm.oov_counts.items() if self._spm is not None else ()):
            out[c] = out.get(c, 0) + n
        return out

    def text_to_units(self, text: str) -> list[str]:
        if self.token_type == "bpe":
            pieces = self.tokenizer(text)  # unknown characters: counted in tokenizer.oov_counts
        elif self.token_type == "char":
            pieces = ["<space>" if c == " " else c for c in text]
        else:
            raise NotImplementedError(f"{self.files.config}: token_type {self.token_type!r} has no text -> "
                                      f"units mapping here (bpe and char do)")
        return self._known_units(text, pieces)

    def _known_units(self, text: str, pieces: list[str]) -> list[str]:
        """Apply the OOV policy to units outside ``token_list``."""
        known = set(self.inventory.units)
        unk = "<unk>" if "<unk>" in known else None
        out = []
        for i, p in enumerate(pieces):
            if p in known:
                out.append(p)
                continue
            self._oov_units[p] = self._oov_units.get(p, 0) + 1
            if self.oov == "fail":
                where = f"character {i}" if self.token_type == "char" else f"piece {i}"
                raise ValueError(f"{self.files.config}: token_list has no unit for {p!r} "
                                 f"(U+{ord(p[0]):04X}) at {where} of {text!r} (oov policy 'fail'; "
                                 f"'drop' or 'map' go on)")
            if self.oov == "map" and unk is not None:
                out.append(unk)
        return out
