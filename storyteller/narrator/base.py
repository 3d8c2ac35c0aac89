"""The one small protocol every narrator backend follows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class NarratorError(Exception):
    """A narrator problem; the message is one line that says what to do."""


class SamplingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int = Field(40, ge=0)
    repeat_penalty: float = Field(1.1, ge=0.5, le=2.0)
    max_tokens: int = Field(160, ge=1)
    seed: int = 0


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
    server_prompt_tokens: int | None = None  # the prompt as a server counted it, if it says


class Narrator(Protocol):
    model_id: str
    n_ctx: int

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
        validate, since other backends may only be asked nicely."""

    def close(self) -> None:
        """Free the model."""


def complete(narrator: Narrator, prompt: RenderedPrompt, options: SamplingOptions,
             json_schema: dict | None = None,
             cancel: threading.Event | None = None) -> tuple[str, GenerationStats]:
    """A whole answer at once (extraction, summaries), off the player's screen."""
    stats = GenerationStats()
    chunks = narrator.stream(prompt, options, cancel or threading.Event(), stats, json_schema)
    return "".join(chunks).strip(), stats
