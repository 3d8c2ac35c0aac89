"""Memory entries: what the story remembers, one fact or story chunk each.

Entries of kind character / location / item / plot / lore carry a name and aliases, so
the retriever can activate them when the player (or the story) mentions them; secondary
keys, when the entry is selective, narrow that down (lorebook.secondary_keys_pass).
`event` entries are chunks of the transcript (story passages). The terminal UI shows and
edits these same entries through the MemoryView protocol (view.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container
from dataclasses import asdict, dataclass

from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import SELECTIVE_LOGICS, LoreEntry
from storyteller.text import normalize_name

KINDS = ("character", "location", "item", "plot", "lore", "event")
NAMED_KINDS = ("character", "location", "item", "plot", "lore")
NOTES = "notes"  # the source of what note-taking wrote (older saves: "extracted")
SOURCES = ("world", "player", NOTES, "story")
EVENT_IMPORTANCE = 3
EVENT_CHUNK_WORDS = 90  # all-MiniLM-L6-v2 reads 256 word pieces; a chunk stays well inside
EVENT_INPUT_WORDS = 30  # the player's action, repeated at the head of every chunk
# An action this long also gets a chunk of its own: what the player did or said is what
# a later action refers to ("where did I hide the key?"), and a small model's narration
# beside it dilutes the match (measured: similarity 0.34 alone vs 0.23 with narration).
ACTION_CHUNK_MIN_WORDS = 4
_SENTENCE_END = re.compile(r"(?<=[.!?…\"”])\s+")
_EVENT_HEADER = re.compile(r"^Turn \d+\. The player: ")
_EVENT_STORY = " The story: "


@dataclass(frozen=True)
class MemoryEntry:
    id: str
    kind: str
    text: str
    name: str = ""
    aliases: tuple[str, ...] = ()
    turn: int = 0  # the turn that created or last changed it (0: before the first turn)
    importance: int = 5  # 1-10, rated once when written
    pinned: bool = False
    source: str = "story"
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False  # gate on the secondary keys (with selective_logic)
    selective_logic: str = "AND ANY"

    def __post_init__(self):
        for name in ("aliases", "secondary_keys"):  # lists (from to_json) become tuples
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.kind not in KINDS:
            raise ValueError(f"unknown memory kind {self.kind!r}")
        if self.selective_logic not in SELECTIVE_LOGICS:
            raise ValueError(f"unknown selective logic {self.selective_logic!r}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown memory source {self.source!r}")
        if not 1 <= self.importance <= 10:
            raise ValueError(f"importance {self.importance} is not within 1-10")

    @property
    def names(self) -> tuple[str, ...]:
        """The name and aliases: what keyword activation looks for."""
        return tuple(n for n in (self.name, *self.aliases) if n)

    @property
    def search_text(self) -> str:
        """What the embedding reads: an event without the "Turn N. The player:" and "The
        story:" labels every event shares. Those words made every passage a little alike:
        without them, a fact asked about 100-250 turns later matched its passage by
        0.06-0.18 more (coherence benchmark), enough to rank above unrelated turns."""
        if self.kind != "event":
            return self.text
        return _EVENT_HEADER.sub("", self.text).replace(_EVENT_STORY, "\n", 1)

    def to_json(self) -> dict:
        return {**asdict(self), "aliases": list(self.aliases),
                "secondary_keys": list(self.secondary_keys)}

    @classmethod
    def from_json(cls, record: dict) -> MemoryEntry:
        return cls(id=str(record["id"]), kind=str(record["kind"]), text=str(record["text"]),
                   name=str(record.get("name", "")),
                   aliases=tuple(str(a) for a in record.get("aliases", ())),
                   turn=int(record.get("turn", 0)), importance=int(record.get("importance", 5)),
                   pinned=bool(record.get("pinned", False)),
                   source=_source(str(record.get("source", "story"))),
                   secondary_keys=tuple(str(k) for k in record.get("secondary_keys", ())),
                   selective=bool(record.get("selective", False)),
                   selective_logic=str(record.get("selective_logic", "AND ANY")))

    def metadata(self) -> dict:
        """Chroma metadata: scalars only (aliases and secondary keys joined by '|')."""
        return {"kind": self.kind, "name": self.name, "aliases": "|".join(self.aliases),
                "turn": self.turn, "importance": self.importance, "pinned": self.pinned,
                "source": self.source, "secondary_keys": "|".join(self.secondary_keys),
                "selective": self.selective, "selective_logic": self.selective_logic}

    @classmethod
    def from_metadata(cls, entry_id: str, text: str, metadata: dict) -> MemoryEntry:
        def split(field: str) -> tuple[str, ...]:
            return tuple(a for a in str(metadata.get(field, "")).split("|") if a)

        return cls.from_json({**metadata, "id": entry_id, "text": text,
                              "aliases": split("aliases"),
                              "secondary_keys": split("secondary_keys")})


def _source(name: str) -> str:
    return NOTES if name == "extracted" else name


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", normalize_name(text)).strip("-")[:48] or "entry"


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def named_entry_id(kind: str, name: str) -> str:
    return f"{kind}-{slug(name)}"


def free_id(base: str, taken: Container[str]) -> str:
    """base, or base-2, base-3...: the first that is not taken."""
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def world_entries(lore: tuple[LoreEntry, ...]) -> list[MemoryEntry]:
    """A world's lore as memory entries (turn 0, source 'world'). Two entries whose names
    make the same id (a lorebook may repeat a name; names in other scripts all slug to
    "entry") get ids of their own, numbered in the world's order."""
    entries: list[MemoryEntry] = []
    taken: set[str] = set()
    for item in lore:
        entry_id = free_id(named_entry_id(item.kind, item.name), taken)
        taken.add(entry_id)
        entries.append(MemoryEntry(
            id=entry_id, kind=item.kind, text=with_name(item.name, item.text),
            name=item.name, aliases=item.aliases, importance=item.importance,
            pinned=item.pinned, source="world", secondary_keys=item.secondary_keys,
            selective=item.selective, selective_logic=item.selective_logic))
    return entries


def with_name(name: str, text: str, aliases: tuple[str, ...] = ()) -> str:
    """A named entry's text must say whom it is about, on its own in the prompt."""
    text = text.strip()
    said = f" {normalize_name(text)} "
    if any(f" {normalize_name(n)} " in said for n in (name, *aliases) if n):
        return text
    return f"{name[:1].upper()}{name[1:]}: {text}"


def event_entries(turn: Turn) -> list[MemoryEntry]:
    """A turn's exchange as `event` chunks of about EVENT_CHUNK_WORDS words, cut at
    sentence ends. Each chunk repeats the (shortened) action, so it stands alone; an
    action of ACTION_CHUNK_MIN_WORDS or more is also a chunk by itself. Ids come from
    the turn and the text, so a reindex recreates the same ids."""
    action = " ".join(turn.input.split()[:EVENT_INPUT_WORDS])
    chunks: list[str] = []
    current: list[str] = []
    for piece in _sentence_pieces(turn.output):
        if current and len(" ".join([*current, piece]).split()) > EVENT_CHUNK_WORDS:
            chunks.append(" ".join(current))
            current = []
        current.append(piece)
    if current:
        chunks.append(" ".join(current))
    entries = []
    header = f"Turn {turn.number}. The player: "  # search_text drops it again
    if len(turn.input.split()) >= ACTION_CHUNK_MIN_WORDS:
        text = header + " ".join(turn.input.split()[:EVENT_CHUNK_WORDS])
        entries.append(MemoryEntry(id=f"event-{turn.number}-a-{short_hash(text)}", kind="event",
                                   text=text, turn=turn.number, importance=EVENT_IMPORTANCE,
                                   source="story"))
    for index, chunk in enumerate(chunks or [""]):
        text = f"{header}{action}{_EVENT_STORY}{chunk}".strip()
        entries.append(MemoryEntry(id=f"event-{turn.number}-{index}-{short_hash(text)}",
                                   kind="event", text=text, turn=turn.number,
                                   importance=EVENT_IMPORTANCE, source="story"))
    return entries


def _sentence_pieces(text: str):
    """Sentences, with any sentence longer than a chunk cut into chunk-sized pieces."""
    for sentence in _SENTENCE_END.split(text.strip()):
        words = sentence.split()
        for start in range(0, len(words), EVENT_CHUNK_WORDS):
            yield " ".join(words[start:start + EVENT_CHUNK_WORDS])
