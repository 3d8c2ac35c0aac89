"""The prompt's scaffolding, cut from a narration: a small model copies the labels and
headers it was given ("Earlier in the story:", "The player:", "Turn 12."), and a player
reads them as the game breaking. The cut runs on the stream, so what is shown and what
is saved are the same clean text."""

from __future__ import annotations

import re

from storyteller.context.prompt import (
    PINNED_HEADER,
    RECALLED_HEADER,
    SUMMARY_HEADER,
)

_HEADERS = [PINNED_HEADER, RECALLED_HEADER, SUMMARY_HEADER, "The story begins:",
            "Remember:"]
SCAFFOLD = re.compile(
    r"\(?(?:" + "|".join(re.escape(header[:-1]) + r"\s*:" for header in _HEADERS) + r")\s*"
    r"|\b(?:The|the) (?:player|narrator|story)\s*:\s*"
    r"|\bTurn \d+\s*[.:]\s*",
    re.IGNORECASE)
HOLD_BACK = 32  # characters kept back from the stream: a marker may span chunks


def cut_scaffolding(text: str) -> tuple[str, int]:
    """The text without scaffolding, and how many characters were cut."""
    cut = SCAFFOLD.sub("", text)
    return cut, len(text) - len(cut)


class ScaffoldFilter:
    """Cuts scaffolding from a stream of chunks: feed() returns what may be shown now,
    finish() the rest; `cut` counts the characters taken out."""

    def __init__(self):
        self._pending = ""
        self.cut = 0

    def feed(self, chunk: str) -> str:
        self._pending += chunk
        clean, removed = cut_scaffolding(self._pending)
        self.cut += removed
        safe = max(0, len(clean) - HOLD_BACK)
        shown, self._pending = clean[:safe], clean[safe:]
        return shown

    def finish(self) -> str:
        clean, removed = cut_scaffolding(self._pending)
        self.cut += removed
        self._pending = ""
        return clean
