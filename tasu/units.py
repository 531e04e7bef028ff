"""Encoder unit inventories and the words of a transcript.

A :class:`UnitInventory` is the ordered list of output units of a CTC encoder (ids are
row indices of its posteriors), with its blank and word-boundary units. The text -> units
of a particular encoder lives with it (hama's G2P: :mod:`tasu.g2p`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def text_words(text: str) -> list[str]:
    """Lower-cased words of a transcript (punctuation dropped, inner apostrophes kept)."""
    return WORD_RE.findall(text.lower())


@dataclass(frozen=True)
class UnitInventory:
    """Units of a CTC encoder: ``units[i]`` is posterior column ``i``."""

    units: tuple[str, ...]
    blank: str = "<blank>"
    word_boundary: str | None = "<wb>"

    def __post_init__(self) -> None:
        if len(set(self.units)) != len(self.units):
            raise ValueError("unit inventory has duplicate units")
        if self.blank not in self.units:
            raise ValueError(f"blank unit {self.blank!r} is not in the inventory")

    @property
    def size(self) -> int:
        return len(self.units)

    @property
    def blank_id(self) -> int:
        return self.units.index(self.blank)

    @property
    def wb_id(self) -> int | None:
        return None if self.word_boundary is None else self.units.index(self.word_boundary)

    def index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.units)}

    def to_file(self, path: Path) -> None:
        """One unit a line, in id order (Kaldi ``tokens.txt`` style: ``<unit> <id>``)."""
        path.write_text("".join(f"{u} {i}\n" for i, u in enumerate(self.units)), encoding="utf-8")

    @classmethod
    def from_file(cls, path: Path, blank: str = "<blank>", word_boundary: str | None = "<wb>") -> UnitInventory:
        units = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.rsplit(" ", 1)
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) != n - 1:
                raise ValueError(f"{path}:{n}: expected '<unit> {n - 1}', got {line!r}")
            units.append(parts[0])
        return cls(tuple(units), blank, word_boundary)


