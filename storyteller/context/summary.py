"""The rolling summary: the story so far, for turns that have left the history.

Two watermarks (as in MemGPT): when the history outgrows `high` of its share, the
oldest turns are summarized, in the background, until the history is back under `low`
of its share. Evicting several turns at once changes the prompt's prefix only once in a
while, so llama.cpp keeps reusing its cache between summaries.

The summary has its own prompt (prompts/summary.txt), sees only text that is leaving the
context (plus the previous summary), and is rejected if it is not shorter than its
source. Summaries are saved in saves/<campaign>/summaries.jsonl, append-only; /undo of a
turn that a summary covers invalidates that summary.
"""

from __future__ import annotations

import json
import logging
import os
import string
import threading
from dataclasses import dataclass
from pathlib import Path

from storyteller.campaign import Turn
from storyteller.context.prompt import split_sentences
from storyteller.narrator.base import Message, Narrator, NarratorError, SamplingOptions, complete

SUMMARIES_FILE = "summaries.jsonl"
SUMMARY_PROMPT_FILE = "summary.txt"
TURN_OVERHEAD_TOKENS = 10  # chat-template wrappers around one turn's two messages
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
        self.history: list[Summary] = self._read()

    @property
    def current(self) -> Summary:
        return self.history[-1] if self.history else Summary()

    def _read(self) -> list[Summary]:
        summaries: list[Summary] = []
        if not self.path.exists():
            return summaries
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line: that summary never completed
            if record.get("type") == "invalidate":
                summaries = [s for s in summaries if s.through_turn < record["from_turn"]]
            elif record.get("type") == "summary":
                summaries.append(Summary(str(record["text"]), int(record["through_turn"])))
        return summaries

    def _append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def record(self, summary: Summary) -> None:
        self._append({"type": "summary", "text": summary.text,
                      "through_turn": summary.through_turn})
        self.history.append(summary)

    def invalidate_from(self, turn_number: int) -> None:
        """A turn was taken back: summaries covering it no longer hold."""
        if self.current.through_turn >= turn_number:
            self._append({"type": "invalidate", "from_turn": turn_number})
            self.history = [s for s in self.history if s.through_turn < turn_number]


@dataclass(frozen=True)
class Watermarks:
    high: float = 0.7  # of the history share: start summarizing
    low: float = 0.35  # of the history share: summarize down to this


class Summarizer:
    """Decides when history must shrink and writes the new summary in a thread."""

    def __init__(self, narrator: Narrator, prompts_dir: Path, summaries: SummaryLog,
                 watermarks: Watermarks = Watermarks(), seed: int = 0):
        self.narrator = narrator
        self.template = string.Template(
            (prompts_dir / SUMMARY_PROMPT_FILE).read_text(encoding="utf-8"))
        self.summaries = summaries
        self.watermarks = watermarks
        self.seed = seed
        self._thread: threading.Thread | None = None
        self._token_cache: dict[tuple[int, str], int] = {}
        self.rejected = 0

    def history(self, turns: list[Turn]) -> list[Turn]:
        """The turns the summary does not cover yet."""
        through = self.summaries.current.through_turn
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

    def maybe_start(self, turns: list[Turn], history_cap: int, summary_cap: int) -> bool:
        """Start summarizing in the background if the history passed the high mark."""
        if self.running:
            return False
        evicted = self.turns_to_evict(turns, history_cap)
        if not evicted:
            return False
        self._thread = threading.Thread(target=self._summarize, args=(evicted, summary_cap),
                                        name="summarizer", daemon=True)
        self._thread.start()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _summarize(self, evicted: list[Turn], summary_cap: int) -> None:
        previous = self.summaries.current
        source = self._source_text(previous, evicted)
        text = self.summarize_text(source, summary_cap)
        if text is None:
            self.rejected += 1
            text = previous.text  # the evicted turns stay findable in memory
        self.summaries.record(Summary(text, evicted[-1].number))

    def summarize_text(self, source: str, summary_cap: int) -> str | None:
        """The model's summary of source, or None if it failed or is not shorter."""
        messages = [
            Message.of("system", self.template.safe_substitute(max_tokens=summary_cap).strip(),
                       "system"),
            Message.of("user", source, "input"),
        ]
        try:
            prompt = self.narrator.render(messages)
            room = min(summary_cap, self.narrator.n_ctx - len(prompt) - 8)
            if room < MIN_SUMMARY_TOKENS:  # a context too small for any summary
                return None
            options = SamplingOptions(temperature=0.3, max_tokens=room,
                                      seed=self.seed, repeat_penalty=1.15)
            text, stats = complete(self.narrator, prompt, options)
        except NarratorError as error:
            log.warning("summary failed: %s", error)
            return None
        if stats.stopped_by == "length":  # cut mid-sentence: keep the whole sentences
            text = " ".join(split_sentences(text)[:-1]) or text
        if not text or self.narrator.count_tokens(text) >= self.narrator.count_tokens(source):
            log.info("summary rejected: empty or not shorter than its source")
            return None
        return text

    @staticmethod
    def _source_text(previous: Summary, evicted: list[Turn]) -> str:
        lines = []
        if previous.text:
            lines += ["Story so far:", previous.text, "", "What happened next:"]
        for turn in evicted:
            lines += [f"The player: {turn.input}", f"The narrator: {turn.output}"]
        return "\n".join(lines)
