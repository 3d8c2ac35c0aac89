"""The contract between the game and a text-generation backend: chat messages made of
prompt-section parts, a prompt as rendered and tokenized, the sampling options, and the
small Narrator protocol every backend follows (storyteller.narrator holds the backends).

It sits below context, memory and narrator, which all speak it, so none of them has to
import another."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from storyteller.errors import ModelError

SAFETY_MARGIN = 8  # tokens kept free between prompt + answer and n_ctx


class Sampling(BaseModel):
    """The sampling a player tunes: defined once here, and shared by the settings, the
    settings a campaign keeps, the settings screen and the command line."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.8, ge=0.0, le=2.0, description="Temperature (0-2)")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Top p (0-1)")
    top_k: int = Field(40, ge=0, description="Top k (0 = off)")
    repeat_penalty: float = Field(1.1, ge=0.5, le=2.0, description="Repeat penalty (0.5-2)")
    max_tokens: int = Field(160, ge=1, le=4096, description="Max tokens per narration")


SAMPLING_FIELDS = tuple(Sampling.model_fields)


class SamplingOptions(Sampling):
    """One generation's options: the sampling plus the seed."""

    seed: int = 0
    # The previous narration: the answer may not copy runs of it (llama.cpp bans them
    # while sampling: narrator/nocopy.py; other backends leave it to the loop guard).
    avoid_copying: str = ""


def check_max_tokens(max_tokens: int, n_ctx: int) -> None:
    """The answer's room may take at most half the context: the story needs the rest."""
    if max_tokens >= n_ctx // 2:
        raise ModelError(f"max tokens: at most {n_ctx // 2 - 1} with a {n_ctx}-token context "
                         f"({max_tokens} leaves too little room for the story); lower "
                         "--max-tokens or raise --n-ctx.")


@dataclass(frozen=True)
class Part:
    section: str  # the prompt section this text belongs to: "system", "history", "input"...
    text: str


@dataclass(frozen=True)
class Message:
    """A chat message whose content is made of parts from one or more prompt sections."""

    role: str  # "system", "user" or "assistant"
    parts: tuple[Part, ...]

    @classmethod
    def of(cls, role: str, text: str, section: str) -> Message:
        return cls(role, (Part(section, text),))

    @property
    def content(self) -> str:
        return "".join(part.text for part in self.parts)


@dataclass
class RenderedPrompt:
    """A prompt exactly as it will be sent: its text, its tokens, and how many tokens
    each section accounts for (template wrappers included), in prompt order.

    A server applies its own chat template (openai backend): the tokens it adds, and all
    tokens when it cannot tokenize for us, are estimated on the safe side and counted in
    estimated_tokens rather than listed."""

    messages: list[Message]
    text: str
    tokens: list[int]
    section_tokens: dict[str, int] = field(default_factory=dict)
    estimated_tokens: int = 0

    def __len__(self) -> int:
        return len(self.tokens) + self.estimated_tokens


@dataclass
class GenerationStats:
    """Filled in by Narrator.stream while it runs."""

    completion_tokens: int = 0
    stopped_by: str = ""  # "eos", "length", "cancel"
    # Prompt tokens evaluated by this call, i.e. not already in the backend's cache;
    # None: the backend cannot tell (then all the prompt's tokens count).
    evaluated_tokens: int | None = None


class Narrator(Protocol):
    model_id: str
    n_ctx: int
    parameters: int | None  # the model's size, when the backend knows it (note-taking's default)

    def render(self, messages: list[Message]) -> RenderedPrompt:
        """Apply the chat template and tokenize. Message contents are untrusted text:
        they never become control tokens."""

    def count_tokens(self, text: str) -> int:
        """Tokens of plain text, as it would be tokenized inside a prompt."""

    def stream(self, prompt: RenderedPrompt, options: SamplingOptions,
               cancel: threading.Event, stats: GenerationStats,
               json_schema: dict | None = None) -> Iterator[str]:
        """Yield text chunks; stop early when cancel is set. With json_schema, output is
        constrained to it where the backend can (llama.cpp: a grammar); callers still
        validate, since other backends may only be asked nicely. Raises ModelError."""

    def close(self) -> None:
        """Free the model."""


class Prefilling(Protocol):
    """A backend that keeps its prompt cache between calls (llama.cpp) can evaluate a
    prompt's front before it is asked to generate; a server backend has no prefill."""

    def prefill(self, tokens: list[int], cancel: threading.Event, aside: bool = False) -> int:
        """Evaluate `tokens` into the cache, in small batches, stopping within one batch
        once cancel is set; a generation always goes first. Returns tokens evaluated.
        aside: into a side copy that leaves the live cache as it is, kept between calls."""

    def end_aside(self, tokens: list[int] | None) -> bool:
        """With `tokens`: make the side copy the live cache if it holds them all; else
        (or None) put the live cache back. Returns whether the side copy was adopted."""


def complete(narrator: Narrator, prompt: RenderedPrompt, options: SamplingOptions,
             json_schema: dict | None = None,
             cancel: threading.Event | None = None,
             pause: Callable[[], object] | None = None) -> tuple[str, GenerationStats]:
    """A whole answer at once (extraction, summaries), off the player's screen. pause()
    runs before each next token is asked for (a local model computes none meanwhile)."""
    stats = GenerationStats()
    chunks = []
    for chunk in narrator.stream(prompt, options, cancel or threading.Event(), stats,
                                 json_schema):
        chunks.append(chunk)
        if pause:
            pause()
    return "".join(chunks).strip(), stats
