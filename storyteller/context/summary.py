"""The rolling summary: the story so far, for turns that have left the history.

Two watermarks (as in MemGPT): when the history outgrows `high` of its share, the
oldest turns are summarized, in the background, until the history is back under `low`
of its share. Evicting several turns at once changes the prompt's prefix only once in a
while, so llama.cpp keeps reusing its cache between summaries.

The summary has its own prompt (prompts/summary.txt), sees only text that is leaving the
context (plus the previous summary), and is rejected if it is not shorter than its
source. A source too long for the context is summarized in pieces that fit. While the
history grows, a background context of its own (warm=True) reads the next summary's
prompt so far (the summary, then each new turn), so that when a summary is due only its
writing is left; with the prefill, the next summary waits until the newest is in the
prompt, and its tokens wait while a turn waits for its first word. A summary that fails
or is rejected leaves its turns in the history. Summaries are saved in
saves/<campaign>/summaries.jsonl, append-only; /undo of a turn that a summary covers
invalidates that summary.
"""

from __future__ import annotations

import logging
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storyteller.context.prompt import TURN_OVERHEAD_TOKENS
from storyteller.errors import ModelError
from storyteller.generation import (
    SAFETY_MARGIN,
    Message,
    Narrator,
    RenderedPrompt,
    SamplingOptions,
    complete,
)
from storyteller.storage.durable import append_jsonl, read_jsonl
from storyteller.storage.transcript import Turn
from storyteller.text import split_sentences

SUMMARIES_FILE = "summaries.jsonl"
SUMMARY_PROMPT_FILE = "summary.txt"
RETRY_AFTER_TURNS = 3  # after a failed or rejected summary, wait this many turns
PROMPT_OVERHEAD_TOKENS = 160  # the summary instructions and the chat template's wrappers
MIN_SUMMARY_TOKENS = 16  # below this no summary is worth writing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Summary:
    text: str = ""
    through_turn: int = 0  # the last turn it covers; history starts after it


class SummaryLog:
    """summaries.jsonl: records {"type": "summary", text, through_turn} and
    {"type": "invalidate", from_turn}; the latest valid summary wins."""

    def __init__(self, campaign_path: Path):
        self.path = campaign_path / SUMMARIES_FILE
        self.history: list[Summary] = []
        for record in read_jsonl(self.path):
            if record.get("type") == "invalidate":
                self.history = [s for s in self.history if s.through_turn < record["from_turn"]]
            elif record.get("type") == "summary":
                self.history.append(Summary(str(record["text"]), int(record["through_turn"])))

    @property
    def current(self) -> Summary:
        return self.history[-1] if self.history else Summary()

    def record(self, summary: Summary) -> None:
        append_jsonl(self.path, {"type": "summary", "text": summary.text,
                                 "through_turn": summary.through_turn})
        self.history.append(summary)

    def invalidate_from(self, turn_number: int) -> None:
        """A turn was taken back: summaries covering it no longer hold."""
        if self.current.through_turn >= turn_number:
            append_jsonl(self.path, {"type": "invalidate", "from_turn": turn_number})
            self.history = [s for s in self.history if s.through_turn < turn_number]


@dataclass(frozen=True)
class Watermarks:
    high: float = 0.7  # of the history share: start summarizing
    low: float = 0.35  # of the history share: summarize down to this


Caps = Callable[[], tuple[int, int]]  # the history's and the summary's token caps now


class Summarizer:
    """Decides when history must shrink and writes the new summary in a thread. A store
    derived from the transcript: record(turn) after a turn, forget_from(n) when turns
    from n on are taken back, settle() to wait for the summary being written."""

    def __init__(self, narrator: Narrator, prompts_dir: Path, summaries: SummaryLog,
                 turns: Callable[[], list[Turn]] = list, caps: Caps = lambda: (0, 0),
                 watermarks: Watermarks = Watermarks(), seed: int = 0, warm: bool = False,
                 in_use: Callable[[], bool] = lambda: True,
                 pause: Callable[[], object] = lambda: None):
        """turns() gives the live turns, caps() the history's and the summary's token
        caps: both as they are when a turn is recorded. warm: the narrator is a context
        of the summaries' own (never the story's), whose cache may be used ahead.
        in_use() says whether the newest summary has reached the prompt: the next one
        waits for it (with the prefill a summary enters once its layout is read, and a
        newer one meanwhile would make that reading start over). pause() is called
        between the summary's tokens: it holds them while a turn waits for its first
        word."""
        self.narrator = narrator
        self.template = string.Template(
            (prompts_dir / SUMMARY_PROMPT_FILE).read_text(encoding="utf-8"))
        self.summaries = summaries
        self.turns = turns
        self.caps = caps
        self.watermarks = watermarks
        self.seed = seed
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._job_through = 0  # the last turn the summary being written covers
        self._retry_at = 0  # a summary failed: the turn from which to try again
        self._lock = threading.Lock()  # a finished summary is checked and recorded under it
        self._token_cache: dict[tuple[int, str], int] = {}
        self._warm = warm and hasattr(narrator, "prefill")
        self._warming: threading.Thread | None = None
        self._warm_cancel = threading.Event()
        self.on_summary: Callable[[], None] = lambda: None  # after a summary is recorded
        self.in_use = in_use
        self.pause = pause

    def history(self, turns: list[Turn], summary: Summary | None = None) -> list[Turn]:
        """The turns the summary (by default the newest) does not cover yet."""
        through = (summary or self.summaries.current).through_turn
        return [turn for turn in turns if turn.number > through]

    def turn_tokens(self, turn: Turn) -> int:
        key = (turn.number, turn.created)
        if key not in self._token_cache:
            self._token_cache[key] = (self.narrator.count_tokens(turn.input)
                                      + self.narrator.count_tokens(turn.output)
                                      + TURN_OVERHEAD_TOKENS)
        return self._token_cache[key]

    def turns_to_evict(self, turns: list[Turn], history_cap: int) -> list[Turn]:
        """Oldest turns to summarize now, or [] while the history is under `high`."""
        history = self.history(turns)
        sizes = [self.turn_tokens(turn) for turn in history]
        if sum(sizes) <= self.watermarks.high * history_cap:
            return []
        remaining, evict = sum(sizes), 0
        while evict < len(history) - 1 and remaining > self.watermarks.low * history_cap:
            remaining -= sizes[evict]
            evict += 1
        return history[:evict]

    # -- the derived-store interface ------------------------------------------------

    def record(self, turn: Turn) -> None:
        """Start summarizing in the background if the history passed the high mark."""
        if self.running or turn.number < self._retry_at or not self.in_use():
            return
        history_cap, summary_cap = self.caps()
        turns = self.turns()
        evicted = self.turns_to_evict(turns, history_cap)
        self.hold()
        if not evicted:
            self._warm_up(self.history(turns), summary_cap)
            return
        self._cancel, self._job_through = threading.Event(), evicted[-1].number
        self._thread = threading.Thread(target=self._summarize, name="summarizer", daemon=True,
                                        args=(evicted, summary_cap, self._cancel))
        self._thread.start()

    def forget_from(self, number: int) -> None:
        """Turns from `number` on were taken back: a summary of them no longer holds, and
        one being written of them is dropped."""
        with self._lock:
            if self._job_through >= number:
                self._cancel.set()
            self.summaries.invalidate_from(number)

    def settle(self) -> None:
        for thread in (self._warming, self._thread):
            if thread is not None:
                thread.join()

    def hold(self) -> None:
        """Stop reading ahead (a turn starts, or a summary is due): the cache keeps what
        was read, the next turn recorded goes on from there."""
        self._warm_cancel.set()

    def _warm_up(self, history: list[Turn], summary_cap: int) -> None:
        """Read the prompt the next summary will most likely start with (all the history
        standing in for the turns it will cover) into the narrator's cache."""
        if not self._warm or not history:
            return
        self._warm_cancel = cancel = threading.Event()
        source = self._source_text(self.summaries.current, history)

        def read_ahead() -> None:
            try:
                self.narrator.prefill(self._prompt(source, summary_cap).tokens, cancel)
            except ModelError as error:  # the summary itself will say more
                log.info("summary read-ahead skipped: %s", error)

        self._warming = threading.Thread(target=read_ahead, name="summary-read-ahead",
                                         daemon=True)
        self._warming.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _summarize(self, evicted: list[Turn], summary_cap: int,
                   cancel: threading.Event) -> None:
        """Summarize the evicted turns in pieces whose source fits the context, oldest
        first, each piece on top of the summary so far. A piece that fails or is rejected
        stops there: its turns stay in the history (the budget keeps the newest of them),
        and the next turn tries again."""
        for piece in self.pieces(evicted, summary_cap):
            previous = self.summaries.current
            text = self.summarize_text(self._source_text(previous, piece), summary_cap, cancel)
            with self._lock:
                if text is None:
                    self._retry_at = self.turns()[-1].number + RETRY_AFTER_TURNS
                if cancel.is_set() or text is None:
                    return
                try:
                    self.summaries.record(Summary(text, piece[-1].number))
                except OSError as error:  # a failing disk: the turns stay in the history
                    log.warning("summary not saved: %s", error)
                    return
            self.on_summary()

    def pieces(self, turns: list[Turn], summary_cap: int) -> list[list[Turn]]:
        """The turns in runs whose summary prompt (instructions, the summary so far, the
        run) leaves room for a summary of summary_cap tokens."""
        room = self.narrator.n_ctx - summary_cap - SAFETY_MARGIN - PROMPT_OVERHEAD_TOKENS \
            - summary_cap  # the summary so far is at most a summary long
        pieces: list[list[Turn]] = [[]]
        used = 0
        for turn in turns:
            tokens = self.turn_tokens(turn)
            if pieces[-1] and used + tokens > room:
                pieces.append([])
                used = 0
            pieces[-1].append(turn)
            used += tokens
        return [piece for piece in pieces if piece]

    def summarize_text(self, source: str, summary_cap: int,
                       cancel: threading.Event | None = None) -> str | None:
        """The model's summary of source, or None if it failed or is not shorter."""
        try:
            prompt = self._prompt(source, summary_cap)
            room = min(summary_cap, self.narrator.n_ctx - len(prompt) - SAFETY_MARGIN)
            if room < MIN_SUMMARY_TOKENS:  # a context too small for any summary
                return None
            options = SamplingOptions(temperature=0.3, max_tokens=room,
                                      seed=self.seed, repeat_penalty=1.15)
            text, stats = complete(self.narrator, prompt, options, cancel=cancel,
                                   pause=self.pause)
        except ModelError as error:
            log.warning("summary failed: %s", error)
            return None
        if stats.stopped_by == "length":  # cut mid-sentence: keep the whole sentences
            text = " ".join(split_sentences(text)[:-1]) or text
        if not text or self.narrator.count_tokens(text) >= self.narrator.count_tokens(source):
            log.info("summary rejected: empty or not shorter than its source")
            return None
        return text

    def _prompt(self, source: str, summary_cap: int) -> RenderedPrompt:
        return self.narrator.render([
            Message.of("system", self.template.safe_substitute(max_tokens=summary_cap).strip(),
                       "system"),
            Message.of("user", source, "input"),
        ])

    @staticmethod
    def _source_text(previous: Summary, evicted: list[Turn]) -> str:
        lines = []
        if previous.text:
            lines += ["Story so far:", previous.text, "", "What happened next:"]
        for turn in evicted:
            lines += [f"The player: {turn.input}", f"The narrator: {turn.output}"]
        return "\n".join(lines)
