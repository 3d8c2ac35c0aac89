"""The lexical index: BM25 over the same entries as the vector index, in SQLite's FTS5
(a file in the campaign's memory/ folder; rows are added and deleted as the story goes,
and FTS5 ranks with BM25 itself). Names and rare words decide most questions about the
distant past ("what did Tobias lend me?"), and a dense search alone misses them.

Like the vector index it is derived: the transcript, the world and memories.jsonl are
the truth, and `storyteller reindex` rebuilds both."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from storyteller.errors import MemoryIndexError
from storyteller.memory.entries import MemoryEntry

LEXICAL_FILE = "lexical.sqlite3"
MAX_QUERY_WORDS = 32  # a long input is searched by its rarest-looking words first
# Words that say nothing about what is asked; BM25 would give them little weight anyway,
# but each one costs a posting-list scan.
STOP_WORDS = frozenset([
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as",
    "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
    "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from",
    "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him",
    "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me",
    "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only",
    "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why",
    "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "let", "lets",
    "tell", "told", "say", "said", "ask", "asked"
])
_WORD = re.compile(r"\w+")
TOKENIZER = "'porter unicode61'"  # "confides" and "confided" are one term


def query_words(text: str) -> list[str]:
    """The words of a query worth searching for, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.casefold()):
        if word not in STOP_WORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word)
    return list(seen)[:MAX_QUERY_WORDS]


class LexicalIndex:
    """One FTS5 table of (id, kind, turn, text); thread-safe (the background writer adds
    rows while a turn searches)."""

    def __init__(self, path: Path | None):
        """path None: an index in memory (tests)."""
        try:
            self._db = sqlite3.connect(str(path) if path else ":memory:",
                                       check_same_thread=False)
            self._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS entries USING fts5("
                             "id UNINDEXED, kind UNINDEXED, turn UNINDEXED, text, "
                             f"tokenize = {TOKENIZER})")
            # How many entries hold each term; and a scratch table whose vocabulary gives
            # any text's terms as the index stems them (kept in memory, never saved).
            self._db.execute("CREATE VIRTUAL TABLE temp.entry_terms USING fts5vocab("
                             "main, entries, 'row')")
            self._db.execute(f"CREATE VIRTUAL TABLE temp.scratch USING fts5(text, "
                             f"tokenize = {TOKENIZER})")
            self._db.execute("CREATE VIRTUAL TABLE temp.scratch_terms USING fts5vocab("
                             "temp, scratch, 'instance')")
            self._db.commit()
        except sqlite3.Error as error:
            raise MemoryIndexError(f"Cannot open the lexical index {path} ({error}); delete "
                                   "it and run `storyteller reindex`.") from None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, campaign_folder: Path, index_folder: str) -> LexicalIndex:
        folder = campaign_folder / index_folder
        folder.mkdir(exist_ok=True)
        return cls(folder / LEXICAL_FILE)

    def upsert(self, entries: Iterable[MemoryEntry]) -> None:
        rows = [(entry.id, entry.kind, entry.turn, entry.search_text) for entry in
                {entry.id: entry for entry in entries}.values()]
        if rows:
            self._write("DELETE FROM entries WHERE id = ?", [(row[0],) for row in rows])
            self._write("INSERT INTO entries (id, kind, turn, text) VALUES (?, ?, ?, ?)", rows)

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._write("DELETE FROM entries WHERE id = ?", [(entry_id,) for entry_id in ids])

    def delete_events_from(self, turn: int) -> None:
        self._write("DELETE FROM entries WHERE kind = 'event' AND turn >= ?", [(turn,)])

    def reset(self) -> None:
        self._write("DELETE FROM entries", [()])

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM entries").fetchone()[0]

    def search(self, text: str, limit: int) -> list[tuple[str, str, int, float]]:
        """(id, kind, turn, BM25 score) of the best matches, best first (higher is
        better)."""
        words = query_words(text)
        if not words:
            return []
        match = " OR ".join('"' + word.replace('"', '""') + '"' for word in words)
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, turn, bm25(entries) FROM entries WHERE entries MATCH ? "
                "ORDER BY bm25(entries) LIMIT ?", (match, limit)).fetchall()
        return [(entry_id, kind, int(turn), -score) for entry_id, kind, turn, score in rows]

    def rare_words(self, text: str, scene: str, most_entries: int) -> list[str]:
        """The words of `text` (query_words) that `scene` does not hold and at most
        `most_entries` entries of the index do (at least one): what a text names that the
        scene lacks and the story has said only once or twice. Compared as the index's
        terms, so a word matches its other forms."""
        words = query_words(text)
        if not words:
            return []
        with self._lock, _failing_as_index_error():
            seen = set(self._terms([scene])[0])
            unseen = {word: terms for word, terms in zip(words, self._terms(words), strict=True)
                      if terms and not seen.intersection(terms)}
            counts = {term: self._entries_with(term)
                      for terms in unseen.values() for term in terms}
        return [word for word, terms in unseen.items()
                if all(0 < counts[term] <= most_entries for term in terms)]

    def naming(self, texts: list[str], words: list[str]) -> list[bool]:
        """For each text, whether it holds one of `words` (compared as the index's terms,
        so a word matches its other forms)."""
        with self._lock, _failing_as_index_error():
            wanted = {term for terms in self._terms(words) for term in terms}
            return [bool(wanted.intersection(terms)) for terms in self._terms(texts)]

    def _entries_with(self, term: str) -> int:
        row = self._db.execute("SELECT doc FROM entry_terms WHERE term = ?", (term,)).fetchone()
        return row[0] if row else 0

    def _terms(self, texts: list[str]) -> list[list[str]]:
        """Each text's terms, in order, as the index stems them (under the lock)."""
        db = self._db
        db.execute("DELETE FROM scratch")
        db.executemany("INSERT INTO scratch (rowid, text) VALUES (?, ?)",
                       list(enumerate(texts, start=1)))
        terms: list[list[str]] = [[] for _ in texts]
        for term, row in db.execute("SELECT term, doc FROM scratch_terms ORDER BY doc, offset"):
            terms[row - 1].append(term)
        db.execute("DELETE FROM scratch")
        return terms

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, rows: list[tuple]) -> None:
        with self._lock, _failing_as_index_error():
            self._db.executemany(sql, rows)
            self._db.commit()


@contextmanager
def _failing_as_index_error() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise MemoryIndexError(f"The lexical index failed ({error}); run `storyteller "
                               "reindex`.") from None
