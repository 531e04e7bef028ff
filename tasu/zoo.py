"""Pack and unpack trained models in the ESPnet model-zoo layout.

A packed model is a zip whose root holds ``meta.yaml``, the file ESPnet's ``pack``/``unpack``
and ``espnet_model_zoo`` read::

    files:       {model_file: exp/<tag>/model.pt, units_file: exp/<tag>/units.txt,
                  lexicon_file: exp/<tag>/lexicon.txt (optional: the training lexicon)}
    yaml_files:  {train_config: exp/<tag>/config.yaml, decode_config: exp/<tag>/decode.yaml}
    timestamp, python, torch            (as ESPnet writes them)
    tasu:        the toolkit version
    sha256:      {<member>: <hex digest>}  for every other member
    references:  parts that are not in the archive (encoder, LLM): package, version, checksum

Members sit under relative paths (``exp/<tag>/...``); unpacking rewrites every YAML value that
names a member to the member's unpacked path, as ESPnet does, so a config may point at an
archived file (``--include_llm`` stores the LLM's GGUF and points ``llm:`` at it).
Unpacking refuses absolute paths, ``..`` and links, and verifies every checksum (a zip
packed by another tool, whose ``meta.yaml`` has no ``sha256``, unpacks with a warning).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

log = logging.getLogger(__name__)

META = "meta.yaml"
#: the packed default model shipped inside the package (egs/open_en; see tasu/pretrained/README.md)
DEFAULT_MODEL = Path(__file__).parent / "pretrained" / "open_en.zip"


class ZooError(RuntimeError):
    """A packed model that cannot be used; the message names the archive (and member)."""


@dataclass(frozen=True)
class Unpacked:
    """Paths of an unpacked (or exp-dir) model."""

    root: Path
    train_config: Path
    model_file: Path
    units_file: Path
    decode_config: Path | None
    meta: dict[str, Any]
    #: the training text's pronunciations (``word<TAB>units<TAB>letters``), packed with ``lexicon=``:
    #: the G2P cache of acoustic rescoring and the words n-best expansion proposes
    lexicon_file: Path | None = None
    #: a sample of the training text (one sentence a line, xz), packed with ``replay=``: what
    #: ``tasu-adapt`` mixes into a domain's text so that general speech is not forgotten
    replay_file: Path | None = None


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def llm_reference(name: str) -> dict[str, Any]:
    """How to get the LLM a config names back: wheel + GGUF checksum, or the path given."""
    from tasu.llm import GGUF_WHEELS, _wheel_gguf

    if name in GGUF_WHEELS:
        module, fname, fix = GGUF_WHEELS[name]
        ref: dict[str, Any] = {"name": name, "install": fix, "package": module.replace("_", "-"),
                               "version": _version(module.replace("_", "-")), "file": fname}
        try:
            ref["sha256"] = sha256_file(_wheel_gguf(name))
        except FileNotFoundError:
            pass
        return ref
    p = Path(name)
    if p.suffix == ".gguf" and p.is_file():
        return {"name": p.name, "sha256": sha256_file(p)}
    return {"name": name}


#: encoder kind -> the package that runs it (for the packed model's references)
ENCODER_PACKAGES = {"hama": "hama", "hf": "transformers", "espnet": "espnet", "sensevoice": "funasr"}


def encoder_reference(encoder: str = "hama") -> dict[str, Any]:
    """What runs ``encoder`` (a :func:`tasu.encoders.build_encoder` spec): not stored, referenced."""
    kind, _, arg = encoder.partition(":")
    package = ENCODER_PACKAGES.get(kind, kind)
    ref = {"name": encoder, "install": f"pip install {package}", "package": package, "version": _version(package)}
    if arg:
        ref["model"] = arg  # a dir on the packing machine or a hub id: get the same model there
    return ref


def read_weights(model_file: str | os.PathLike[str]) -> dict[str, Any]:
    """The trainable weights of ``model_file`` (a state dict, or a checkpoint's ``model``), on the CPU.

    Raises ZooError naming the file when it is missing, not a readable PyTorch file, or holds no tensors.
    """
    import torch

    if not Path(model_file).is_file():
        raise ZooError(f"{model_file}: missing")
    try:
        state = torch.load(model_file, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - damaged files raise RuntimeError, UnpicklingError, EOFError, KeyError...
        why = (str(e).strip().splitlines() or [""])[0][:160]
        raise ZooError(f"{model_file}: not a readable PyTorch weights file ({type(e).__name__}: {why}); "
                       "it is truncated or damaged: re-run training or re-pack the model") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ZooError(f"{model_file}: holds no tensors; expected the trainable weights (projector + adapters)")
    return state


def check_model_files(config: str | os.PathLike[str], units: str | os.PathLike[str],
                      weights: str | os.PathLike[str]) -> None:
    """Cheap checks of a trained model's files, before the LLM is loaded; ZooError naming the file.

    The config must load, the unit inventory parse, and the weights hold projector tensors
    (and LoRA adapters when the config fine-tunes with LoRA).
    """
    from tasu.config import load_config
    from tasu.units import UnitInventory

    for path in (config, units, weights):
        if not Path(path).is_file():
            raise ZooError(f"{path}: missing")
    try:
        cfg = load_config(Path(config))
    except (ValueError, OSError) as e:
        raise ZooError(str(e)) from None
    try:
        UnitInventory.from_file(Path(units))
    except UnicodeDecodeError as e:
        raise ZooError(f"{units}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except (ValueError, OSError) as e:
        raise ZooError(str(e) if str(e).startswith(str(units)) else f"{units}: {e}") from None
    state = read_weights(weights)
    if not any(k.startswith("projector.") for k in state):
        raise ZooError(f"{weights}: holds no projector weights (projector.*); not a tasu model file?")
    if cfg.finetune == "lora" and not any("lora_" in k for k in state):
        raise ZooError(f"{weights}: holds no LoRA adapter weights, but {config} says finetune: lora")


def _small_state(model_file: Path, dtype: str) -> bytes:
    """The trainable-weight file, optionally cast to a 16-bit float type to halve its size."""
    import torch

    if dtype == "float32":
        return model_file.read_bytes()
    dt = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
    if dt is None:
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
    state = read_weights(model_file)
    state = {k: v.to(dt) if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in state.items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def pack(expdir: str | os.PathLike[str], outpath: str | os.PathLike[str], *,
         decode_config: str | os.PathLike[str] | None = None, extra: Iterable[str | os.PathLike[str]] = (),
         include_llm: bool = False, dtype: str = "float32", encoder: str | None = None,
         lexicon: str | os.PathLike[str] | None = None, replay: str | os.PathLike[str] | None = None) -> Path:
    """Pack a finished training dir into ``outpath`` (a ``.zip``), atomically.

    ``extra`` files (RESULTS.md, a README...) go under ``exp/<tag>/``. With ``include_llm``
    the LLM's GGUF file is stored too and ``config.yaml`` points at it. ``lexicon``: the
    training lexicon (stage 1's ``dump/lexicon.txt``), stored as ``exp/<tag>/lexicon.txt`` so
    that decoding with acoustic rescoring or n-best expansion needs no file of the recipe's.
    ``replay``: a sample of the training text (one sentence a line, ``.xz``), stored as
    ``exp/<tag>/replay.txt.xz`` for ``tasu-adapt`` (:mod:`tasu.bin.adapt`).
    """
    expdir, outpath = Path(expdir), Path(outpath)
    if outpath.suffix != ".zip":
        raise ValueError(f"{outpath}: packed models are .zip files")
    for name in ("config.yaml", "units.txt", "model.pt"):
        if not (expdir / name).is_file():
            raise FileNotFoundError(f"{expdir / name}: missing; is {expdir} a finished training dir?")
    check_model_files(expdir / "config.yaml", expdir / "units.txt", expdir / "model.pt")
    if decode_config is not None:
        from tasu.config import DecodeConfig, load_config

        load_config(Path(decode_config), DecodeConfig)  # ValueError/FileNotFoundError naming the file
    prefix = PurePosixPath("exp") / expdir.name
    cfg = yaml.safe_load((expdir / "config.yaml").read_text())
    members: dict[str, bytes | Path] = {}
    encoder = encoder or str(cfg.get("encoder") or "hama")  # configs written before the key: hama
    references = {"encoder": encoder_reference(encoder), "llm": llm_reference(str(cfg.get("llm", "")))}
    if include_llm:
        from tasu.llm import GGUF_WHEELS, _wheel_gguf

        llm = str(cfg.get("llm", ""))
        gguf = _wheel_gguf(llm) if llm in GGUF_WHEELS else Path(llm)
        if gguf.suffix != ".gguf" or not gguf.is_file():
            raise ValueError(f"--include_llm stores a GGUF file; the config's llm {llm!r} is not one")
        arc = str(prefix / "llm" / gguf.name)
        members[arc] = gguf
        cfg["llm"] = arc
        references["llm"]["included"] = arc
    members[str(prefix / "config.yaml")] = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True).encode()
    members[str(prefix / "model.pt")] = _small_state(expdir / "model.pt", dtype)
    members[str(prefix / "units.txt")] = expdir / "units.txt"
    yaml_files = {"train_config": str(prefix / "config.yaml")}
    files = {"model_file": str(prefix / "model.pt"), "units_file": str(prefix / "units.txt")}
    if lexicon is not None:
        from tasu.g2p import read_lexicon

        read_lexicon(Path(lexicon))  # a malformed line: ValueError naming file:line
        members[str(prefix / "lexicon.txt")] = Path(lexicon)
        files["lexicon_file"] = str(prefix / "lexicon.txt")
    if replay is not None:
        if not str(replay).endswith(".xz"):
            raise ValueError(f"{replay}: the replay text is packed xz-compressed (.xz)")
        members[str(prefix / "replay.txt.xz")] = Path(replay)
        files["replay_file"] = str(prefix / "replay.txt.xz")
    if decode_config is not None:
        members[str(prefix / "decode.yaml")] = _standalone_yaml(Path(decode_config))
        yaml_files["decode_config"] = str(prefix / "decode.yaml")
    for f in extra:
        members[str(prefix / Path(f).name)] = Path(f)
    for arc, src in members.items():
        if isinstance(src, Path) and not src.is_file():
            raise FileNotFoundError(f"{src}: missing (to be packed as {arc})")

    import torch

    import tasu

    digests = {arc: (hashlib.sha256(src).hexdigest() if isinstance(src, bytes) else sha256_file(src))
               for arc, src in members.items()}
    meta = {
        "files": files,
        "yaml_files": yaml_files,
        "timestamp": datetime.now().timestamp(),
        "python": sys.version,
        "torch": str(torch.__version__),
        "tasu": tasu.__version__,
        "weights_dtype": dtype,
        "sha256": digests,
        "references": references,
    }
    outpath.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=outpath.parent, prefix=f".{outpath.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(META, yaml.safe_dump(meta, sort_keys=False))
            for arc, src in members.items():
                if isinstance(src, bytes):
                    z.writestr(arc, src)
                else:
                    z.write(src, arc)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private
        os.replace(tmp, outpath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return outpath


def _standalone_yaml(path: Path) -> Path | bytes:
    """A config file as the archive stores it: as is, or with its ``base:`` chain resolved
    (the base files are not in the archive)."""
    from tasu.config import BASE_KEY, read_config_data

    if BASE_KEY not in (yaml.safe_load(path.read_text()) or {}):
        return path
    head = f"# {path.name} with its {BASE_KEY}: chain resolved (tasu.config.read_config_data)\n"
    return (head + yaml.safe_dump(read_config_data(path), sort_keys=False, allow_unicode=True)).encode()


def _safe_member(archive: Path, name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ZooError(f"{archive}: member {name!r} has an absolute path; refusing to unpack")
    if any(part == ".." for part in p.parts) or "\\" in name:
        raise ZooError(f"{archive}: member {name!r} leaves the target directory; refusing to unpack")
    return p


def _rewrite_paths(value: Any, mapping: Mapping[str, str]) -> Any:
    """Replace every string equal to an archived member name by its unpacked path."""
    if isinstance(value, dict):
        return {k: _rewrite_paths(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_paths(v, mapping) for v in value]
    if isinstance(value, str) and value in mapping:
        return mapping[value]
    return value


def read_meta(source: Path, text: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ZooError(f"{source}: {META} is not valid YAML: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict) \
            or not isinstance(meta.get("yaml_files"), dict):
        raise ZooError(f"{source}: {META} lacks the `files` and `yaml_files` mappings of the model-zoo layout")
    for key in ("model_file", "units_file"):
        if key not in meta["files"]:
            raise ZooError(f"{source}: {META} names no {key}")
    if "train_config" not in meta["yaml_files"]:
        raise ZooError(f"{source}: {META} names no train_config")
    return meta


def unpack_zip(archive: str | os.PathLike[str], outdir: str | os.PathLike[str]) -> Unpacked:
    """Extract a packed zip into ``outdir`` (replaced atomically), checking paths and checksums."""
    archive, outdir = Path(archive), Path(outdir)
    if not archive.is_file():
        raise ZooError(f"{archive}: no such file")
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ZooError(f"{archive}: not a readable zip archive ({e}); re-download or re-pack it") from None
    with z:
        names = z.namelist()
        if META not in names:
            raise ZooError(f"{archive}: no {META} at the archive root; not a packed model")
        for info in z.infolist():
            _safe_member(archive, info.filename)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ZooError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to unpack")
        try:
            meta = read_meta(archive, z.read(META).decode("utf-8"))
        except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as e:
            raise ZooError(f"{archive}: cannot read {META}: {e}") from None
        digests = meta.get("sha256")
        if digests is None:  # packed by another tool (ESPnet's pack writes no checksums)
            log.warning("%s: %s holds no sha256 checksums; unpacking without verification", archive, META)
        wanted = list(meta["files"].values()) + list(meta["yaml_files"].values())
        for name in wanted:
            if name not in names:
                raise ZooError(f"{archive}: {META} names {name!r}, which the archive lacks")
        outdir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=outdir.parent, prefix=f".{outdir.name}.tmp"))
        try:
            mapping = {n: str((outdir / n).resolve()) for n in names if not n.endswith("/")}
            for info in z.infolist():
                if info.is_dir():
                    continue
                name = info.filename
                if name != META and digests is not None and name not in digests:
                    raise ZooError(f"{archive}: member {name!r} has no checksum in {META}")
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                try:
                    with z.open(info) as src, open(target, "wb") as dst:
                        while block := src.read(1 << 20):
                            h.update(block)
                            dst.write(block)
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise ZooError(f"{archive}: member {name!r} is corrupt ({e}); re-download or re-pack it") from None
                if name != META and digests is not None and h.hexdigest() != digests[name]:
                    raise ZooError(f"{archive}: checksum mismatch for {name!r} (sha256 {h.hexdigest()[:12]}..., "
                                   f"{META} says {str(digests[name])[:12]}...); the file was changed or damaged")
            for name in meta["yaml_files"].values():
                path = tmp / name
                try:
                    data = yaml.safe_load(path.read_text(encoding="utf-8"))
                except (yaml.YAMLError, UnicodeDecodeError) as e:
                    raise ZooError(f"{archive}: member {name!r} is not valid YAML: {e}") from None
                path.write_text(yaml.safe_dump(_rewrite_paths(data, mapping), sort_keys=False, allow_unicode=True),
                                encoding="utf-8")
            if outdir.exists():
                shutil.rmtree(outdir)
            try:
                os.replace(tmp, outdir)
            except OSError:
                if not (outdir / META).is_file():  # not a concurrent unpack of the same model
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return _from_meta(outdir, meta)


def _from_meta(root: Path, meta: dict[str, Any]) -> Unpacked:
    f, y = meta["files"], meta["yaml_files"]
    out = Unpacked(root, root / y["train_config"], root / f["model_file"], root / f["units_file"],
                   root / y["decode_config"] if "decode_config" in y else None, meta,
                   root / f["lexicon_file"] if "lexicon_file" in f else None,
                   root / f["replay_file"] if "replay_file" in f else None)
    for p in (out.train_config, out.model_file, out.units_file) + tuple(
            x for x in (out.lexicon_file, out.replay_file) if x is not None):
        if not p.is_file():
            raise ZooError(f"{p}: missing from the unpacked model at {root}")
    return out


def _cache_root() -> Path:
    from tasu.fileio import cache_dir

    return cache_dir() / "zoo"


def unpack(source: str | os.PathLike[str] | None = None, outdir: str | os.PathLike[str] | None = None,
           checkpoint: str | None = None) -> Unpacked:
    """A packed zip, an unpacked dir (with ``meta.yaml``), an exp dir, or a zoo name / hub id.

    ``None`` is the default model shipped with the package. Zips unpack into ``outdir``
    (default: ``$TASU_CACHE/zoo/<name>-<sha256 prefix>``), reused when already there.
    ``checkpoint``: the weights file of an exp dir to use instead of ``model.pt``
    (e.g. ``checkpoints/step0001000.pt``). An exp dir's ``decode.yaml``, ``lexicon.txt`` and
    ``replay.txt.xz`` are its decoding config, lexicon and replay text when present (a recipe's
    adapted model keeps its lexicon there).
    """
    src = DEFAULT_MODEL if source is None else Path(source)
    if checkpoint is not None and not (src.is_dir() and (src / "config.yaml").is_file() and not (src / META).is_file()):
        raise ZooError(f"{src}: checkpoint={checkpoint!r} applies to a training dir (config.yaml) only")
    if source is None and not src.is_file():
        raise ZooError(f"{src}: the default model is not installed; pass a packed model or exp dir")
    if src.is_file():
        if outdir is None:
            outdir = _cache_root() / f"{src.stem}-{sha256_file(src)[:16]}"
            if (Path(outdir) / META).is_file():
                return _from_meta(Path(outdir), read_meta(Path(outdir), (Path(outdir) / META).read_text()))
        return unpack_zip(src, outdir)
    if src.is_dir():
        if (src / META).is_file():
            return _from_meta(src, read_meta(src / META, (src / META).read_text()))
        if (src / "config.yaml").is_file():  # an exp dir as training left it
            weights = checkpoint or "model.pt"
            for name in ("units.txt", weights):
                if not (src / name).is_file():
                    raise ZooError(f"{src / name}: missing; is {src} a finished training dir?")
            dec, lex, replay = src / "decode.yaml", src / "lexicon.txt", src / "replay.txt.xz"
            return Unpacked(src, src / "config.yaml", src / weights, src / "units.txt",
                            dec if dec.is_file() else None, {}, lex if lex.is_file() else None,
                            replay if replay.is_file() else None)
        raise ZooError(f"{src}: neither a packed model ({META}) nor a training dir (config.yaml)")
    return _download(str(source), outdir)


def _download(name: str, outdir: str | os.PathLike[str] | None) -> Unpacked:
    """A model-zoo name (``espnet_model_zoo``) or a hub id (``huggingface_hub``), when online."""
    if "/" not in name:
        raise ZooError(f"{name}: no such file or directory, and not a hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        snapshot_download = None
    if snapshot_download is not None:
        try:
            local = Path(snapshot_download(name))
        except Exception as e:  # noqa: BLE001 - network and hub errors vary by version
            raise ZooError(f"{name}: hub download failed ({type(e).__name__}: {e})") from None
        if (local / META).is_file():
            return unpack(local)
        zips = sorted(local.glob("*.zip"))
        if len(zips) == 1:
            return unpack(zips[0], outdir)
        raise ZooError(f"{name}: the hub repo holds neither {META} nor exactly one packed .zip")
    try:
        from espnet_model_zoo.downloader import ModelDownloader
    except ImportError:
        raise ZooError(f"{name}: not a local file or dir; to fetch it from a hub, "
                       "pip install huggingface_hub (or pip install --no-deps espnet_model_zoo)") from None
    d = ModelDownloader().download_and_unpack(name)
    root = Path(d["train_config"]).parents[2]
    return _from_meta(root, read_meta(root / META, (root / META).read_text()))


def check_references(meta: Mapping[str, Any], llm_name: str) -> list[str]:
    """Warnings where the installed encoder/LLM differ from the ones a model was packed with."""
    warnings = []
    refs = meta.get("references") or {}
    enc = refs.get("encoder") or {}
    if enc.get("package") and enc.get("version") and _version(enc["package"]) not in (None, enc["version"]):
        warnings.append(f"packed with {enc['package']} {enc['version']}, installed {_version(enc['package'])}")
    llm = refs.get("llm") or {}
    if llm.get("sha256") and not llm.get("included"):
        from tasu.llm import GGUF_WHEELS, _wheel_gguf

        try:
            path = _wheel_gguf(llm_name) if llm_name in GGUF_WHEELS else Path(llm_name)
            if path.suffix == ".gguf" and path.is_file() and sha256_file(path) != llm["sha256"]:
                warnings.append(f"LLM file {path} differs from the one packed against (sha256 {llm['sha256'][:12]}...)")
        except FileNotFoundError as e:
            warnings.append(str(e))
    return warnings


