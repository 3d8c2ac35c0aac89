"""Cleaning untrusted text from the player before it enters the game, and small helpers
on sequences of it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# CSI / OSC / other ESC sequences a pasted terminal capture may carry.
_ANSI_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_WHITESPACE_RUN = re.compile(r"\s+")
_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"”’])\s+")


def clean_player_input(text: str, max_chars: int) -> tuple[str, str | None]:
    """Return (cleaned text, notice or None): escapes and control characters removed,
    whitespace collapsed to single spaces, cut to max_chars at a word boundary."""
    text = _ANSI_ESCAPE.sub("", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text)
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    if len(text) <= max_chars:
        return text, None
    cut = text[:max_chars]
    if " " in cut[max_chars // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut, f"Your action was {len(text):,} characters; only the first {len(cut):,} were used."


def strip_control(text: str) -> str:
    """Model output or saved text made safe to print or write to a file: escapes and
    control characters removed, line breaks and tabs kept."""
    text = _ANSI_ESCAPE.sub("", text)
    return "".join(ch for ch in text
                   if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))


def normalize_name(name: str) -> str:
    """Names compare without case, punctuation, a possessive 's, extra spaces or a
    leading article: "The Ember-Stone's" is "ember stone"."""
    words = re.sub(r"[^\w\s]", " ", _POSSESSIVE.sub("", name.casefold())).split()
    if len(words) > 1 and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def shared_prefix(one: Sequence, other: Sequence) -> int:
    """How many items two sequences share from the start (two versions of a story's
    turns, two prompts' tokens)."""
    shared = 0
    for first, second in zip(one, other, strict=False):
        if first != second:
            break
        shared += 1
    return shared


def split_sentences(text: str) -> list[str]:
    """Split after . ! ? or … (and a closing quote right after them)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]
