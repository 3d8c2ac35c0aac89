"""The scripted backend (`--backend scripted`), for tests and benchmarks where the model
is beside the point, like `llm`'s toy model: it is not a model, it replays canned
replies word by word, in order, cycling. `--model FILE` gives the replies (a text file,
one reply per paragraph); `STORYTELLER_SCRIPTED_DELAY` (seconds per word) makes them
stream like a model's. Tests also construct it directly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from storyteller.errors import ModelError
from storyteller.generation import GenerationStats, Message, RenderedPrompt, SamplingOptions
from storyteller.narrator.template import render_transcript, sum_sections

DEFAULT_REPLIES = [
    "The lantern flickers as you step forward; the corridor smells of rain and iron.",
    "A voice calls your name from somewhere below, patient and unhurried.",
    "Dust settles. Somewhere, a door you had not noticed closes softly.",
]


def read_replies(path: Path) -> list[str]:
    """The replies of a scripted narrator: the paragraphs of a text file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"Cannot read the scripted replies {path} ({error}); pass --model "
                         "with a UTF-8 text file, one reply per paragraph.") from None
    replies = [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]
    if not replies:
        raise ModelError(f"{path} holds no replies; write one reply per paragraph.")
    return replies


class ScriptedNarrator:
    """Replies from a fixed list, in order, cycling; one fake token per word."""

    def __init__(self, replies: list[str] | None = None, n_ctx: int = 2048,
                 delay: float = 0.0):
        self.replies = list(replies or DEFAULT_REPLIES)
        self.model_id = "scripted"
        self.parameters = None  # not a model
        self.n_ctx = n_ctx
        self.delay = delay  # seconds between words, to exercise streaming and cancel
        self.calls = 0
        self.prompts: list[RenderedPrompt] = []
        self.options: list[SamplingOptions] = []  # per call, to see retries' sampling

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def render(self, messages: list[Message]) -> RenderedPrompt:
        pieces = render_transcript(messages)
        counts = [self.count_tokens(piece.text) for piece in pieces]
        text = "".join(piece.text for piece in pieces)
        tokens = list(range(sum(counts)))
        return RenderedPrompt(messages, text, tokens, sum_sections(pieces, counts))

    def stream(self, prompt: RenderedPrompt, options: SamplingOptions,
               cancel: threading.Event, stats: GenerationStats,
               json_schema: dict | None = None) -> Iterator[str]:
        """Replies in order; with json_schema, the reply is expected to be JSON already."""
        self.prompts.append(prompt)
        self.options.append(options)
        reply = self.replies[self.calls % len(self.replies)]
        self.calls += 1
        stats.stopped_by = "eos"
        for i, word in enumerate(reply.split(" ")[: options.max_tokens]):
            if cancel.is_set():
                stats.stopped_by = "cancel"
                return
            if self.delay:
                time.sleep(self.delay)
            stats.completion_tokens += 1
            yield word if i == 0 else " " + word

    def close(self) -> None:
        pass
