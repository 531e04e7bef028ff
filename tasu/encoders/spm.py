"""Text -> units through a sentencepiece model, with an explicit policy for unknown characters.

Sentencepiece writes a character it has no piece for as its ``<unk>`` piece. ``oov`` says
what happens then (the same three policies as every backend):

- ``fail`` (default): ``ValueError`` naming the character, its code point and its position;
- ``drop``: the ``<unk>`` pieces are left out;
- ``map``: they become the unit ``unk`` (when the model's ``<unk>`` id is also the CTC blank,
  as in SenseVoice, there is no unit to map to and ``map`` drops).

Either way :attr:`SentencePieceUnits.oov_counts` counts the unknown characters seen.
"""
from __future__ import annotations

import logging
from pathlib import Path

from tasu.encoders.base import check_oov_policy

log = logging.getLogger(__name__)


def import_sentencepiece():
    try:
        import sentencepiece
    except ImportError as e:
        raise ImportError("text -> units with a sentencepiece model needs the `sentencepiece` "
                          "package: pip install sentencepiece") from e
    return sentencepiece


class SentencePieceUnits:
    """A sentencepiece model as a text -> pieces function with an OOV policy."""

    def __init__(self, model: Path, oov: str = "fail", unk_unit: str | None = "<unk>") -> None:
        model = Path(model)
        if not model.is_file():
            raise FileNotFoundError(f"sentencepiece model not found: {model}")
        spm = import_sentencepiece()
        self.path = model
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(model))
        except (OSError, RuntimeError) as e:
            raise ValueError(f"{model}: not a sentencepiece model ({e})") from None
        self.oov = check_oov_policy(oov)
        self.unk_unit = unk_unit  # None: unknown characters have no unit of their own
        self.oov_counts: dict[str, int] = {}

    @property
    def pieces(self) -> list[str]:
        return [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]

    def unknown_chars(self, text: str) -> list[tuple[int, str]]:
        """(position, character) of each character of ``text`` the model has no piece for."""
        unk = self.sp.unk_id()
        out = []
        for i, c in enumerate(text):
            if c.isspace():
                continue
            norm = self.sp.normalize(c).replace("\u2581", "")
            if any(self.sp.piece_to_id(ch) == unk for ch in norm):
                out.append((i, c))
        return out

    def __call__(self, text: str) -> list[str]:
        ids = self.sp.encode(text)
        pieces = [self.sp.id_to_piece(i) for i in ids]
        unk = self.sp.unk_id()
        if unk not in ids:
            return pieces
        bad = self.unknown_chars(text)
        for _, c in bad:
            self.oov_counts[c] = self.oov_counts.get(c, 0) + 1
        if self.oov == "fail":
            where = ", ".join(f"{c!r} (U+{ord(c):04X}) at character {i}" for i, c in bad[:5]) or "unknown"
            raise ValueError(f"{self.path.name} cannot write {where} of {text!r} "
                             f"(oov policy 'fail'; 'drop' or 'map' go on)")
        if self.oov == "map" and self.unk_unit is not None:
            return [self.unk_unit if i == unk else p for i, p in zip(ids, pieces)]
        return [p for i, p in zip(ids, pieces) if i != unk]
