"""Atomic file writers: a file appears under its final name complete, or not at all.

Every writer goes through a temp file in the target's directory and ``os.replace``, so a
re-run or a kill never leaves a half-written output that a later stage would trust.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` via a temp file in the same dir + ``os.replace``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same dir + ``os.replace`` (a re-run or a
    kill never leaves a half-written file under the final name)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator:
    """A text file (UTF-8) to write line by line that appears under ``path``, complete, only
    when the block ends without an error (for outputs too large to build as one string)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_ark_writer(ark: Path, scp: Path) -> Iterator:
    """A kaldiio ``ark,scp`` writer whose two files appear, complete, only when the block ends
    without an error (written as ``*.tmp``, the scp pointed at the final ark, then renamed)."""
    import kaldiio

    tmp_ark, tmp_scp = ark.with_suffix(".ark.tmp"), scp.with_suffix(".scp.tmp")
    with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
        yield writer
    text = tmp_scp.read_text().replace(str(tmp_ark), str(ark))
    os.replace(tmp_ark, ark)
    atomic_write_text(scp, text)
    tmp_scp.unlink()


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` through a temp file + ``os.replace`` (checkpoints, model.pt)."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def cache_dir() -> Path:
    return Path(os.environ.get("TASU_CACHE", Path.home() / ".cache" / "tasu"))
