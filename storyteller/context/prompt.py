"""Build the prompt for one turn and make it fit the model's context.

Sections, in a fixed order so consecutive turns share the longest prefix (llama.cpp
then re-evaluates only the new suffix):

    system  (system prompt + world + opening: byte-identical every turn)
    pinned  (facts the player pinned; change rarely)
    summary (the story so far, for turns that left the history)
    history (recent turns, oldest first)
    memories (retrieved for this turn: volatile)
    input   (the player's action)

The budget is n_ctx minus the answer's max_tokens minus a small margin. Hard floors:
the system prompt, pinned facts and the player's input. The rest is shared (BudgetShares):
memories and the summary are held to their shares; history takes what they leave. Over
budget, the lowest-scored memories go first, then the oldest history turns (which the
rolling summary covers); an input that is still too long is shortened with a notice. The
model never receives a prompt that does not fit.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from storyteller.errors import ModelError
from storyteller.generation import SAFETY_MARGIN, Message, Narrator, Part, RenderedPrompt
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World

SYSTEM_PROMPT_FILE = "narrator.txt"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"”’])\s+")
SECTION_ORDER = ("system", "pinned", "summary", "history", "memories", "input")


@dataclass(frozen=True)
class PromptMemory:
    """A retrieved memory as the prompt sees it."""

    id: str
    kind: str
    text: str
    score: float


@dataclass
class PromptParts:
    """Everything a turn's prompt may hold, before fitting."""

    system: str
    player_input: str
    opening: str = ""
    pinned: list[str] = field(default_factory=list)
    summary: str = ""
    history: list[Turn] = field(default_factory=list)
    memories: list[PromptMemory] = field(default_factory=list)  # best first


@dataclass
class Section:
    name: str
    tokens: int
    dropped: int = 0  # items left out to fit (turns, memories, or input characters)

    def to_json(self) -> dict:
        return {"name": self.name, "tokens": self.tokens, "dropped": self.dropped}


@dataclass
class PromptPlan:
    rendered: RenderedPrompt
    sections: list[Section]
    parts: PromptParts  # what was actually sent (after dropping)
    notices: list[str] = field(default_factory=list)


def compose(parts: PromptParts, memories_first: bool = False) -> list[Message]:
    """Turn the parts into chat messages. History alternates user/assistant; pinned
    facts and the summary ride in the system message; retrieved memories ride in the
    final user message just before the action, so every chat template accepts it.
    memories_first puts them right after the system prompt instead: the naive layout,
    kept only so benchmarks can show what it costs the KV cache."""
    system = [Part("system", parts.system)]
    remembered = "\n".join(f"- {memory.text}" for memory in parts.memories)
    if parts.memories and memories_first:
        system.append(Part("memories", f"\n\nRemember:\n{remembered}"))
    if parts.opening:
        system.append(Part("system", f"\n\nThe story begins:\n{parts.opening}"))
    if parts.pinned:
        facts = "\n".join(f"- {fact}" for fact in parts.pinned)
        system.append(Part("pinned", f"\n\nFacts that stay true:\n{facts}"))
    if parts.summary:
        system.append(Part("summary", f"\n\nThe story so far:\n{parts.summary}"))
    messages = [Message("system", tuple(system))]
    for turn in parts.history:
        messages.append(Message.of("user", turn.input, "history"))
        messages.append(Message.of("assistant", turn.output, "history"))
    final: list[Part] = []
    if parts.memories and not memories_first:
        final.append(Part("memories", f"(Remember:\n{remembered})\n\n"))
    final.append(Part("input", parts.player_input))
    messages.append(Message("user", tuple(final)))
    return messages


def sections_of(rendered: RenderedPrompt, dropped: dict[str, int]) -> list[Section]:
    return [Section(name, rendered.section_tokens.get(name, 0), dropped.get(name, 0))
            for name in SECTION_ORDER]


@dataclass(frozen=True)
class BudgetShares:
    """How the flexible part of the context is shared once the hard floors (system
    prompt, pinned facts, the player's input, the answer's reserve) are taken. History
    gets whatever memories and summary leave unused."""

    memories: float = 0.25
    summary: float = 0.15
    history: float = 0.60


@dataclass(frozen=True)
class Budget:
    n_ctx: int
    max_tokens: int
    shares: BudgetShares = BudgetShares()
    input_allowance: int = 64  # tokens set aside for a typical action when sizing shares
    memories_first: bool = False  # the naive layout, for benchmarks (see compose)

    @property
    def prompt_limit(self) -> int:
        """The most tokens a prompt may have: the answer and a margin must still fit."""
        return self.n_ctx - self.max_tokens - SAFETY_MARGIN

    def flexible(self, floor_tokens: int) -> int:
        return max(self.prompt_limit - floor_tokens, 0)

    def cap(self, section: str, floor_tokens: int) -> int:
        return int(getattr(self.shares, section) * self.flexible(floor_tokens))


def build_prompt(narrator: Narrator, parts: PromptParts, budget: Budget) -> PromptPlan:
    """Fit the parts to the budget: memories and summary to their shares, then, while
    over the limit, the lowest-scored memories and the oldest history go first; an input
    that still does not fit is shortened. Every count comes from a real render."""
    parts = PromptParts(**vars(parts))  # never change the caller's lists
    dropped = dict.fromkeys(SECTION_ORDER, 0)
    rendered = narrator.render(compose(parts, budget.memories_first))
    floors = sum(rendered.section_tokens.get(name, 0) for name in ("system", "pinned", "input"))
    dropped["memories"] = _fit_memories(narrator, parts, budget.cap("memories", floors))
    dropped["summary"] = _fit_summary(narrator, parts, budget.cap("summary", floors))
    rendered = narrator.render(compose(parts, budget.memories_first))
    while len(rendered) > budget.prompt_limit and (parts.memories or parts.history):
        if parts.memories:
            parts.memories = parts.memories[:-1]
            dropped["memories"] += 1
        else:
            parts.history = parts.history[1:]
            dropped["history"] += 1
        rendered = narrator.render(compose(parts, budget.memories_first))
    notices: list[str] = []
    original_length = len(parts.player_input)
    while len(rendered) > budget.prompt_limit:
        parts.player_input = _shorten(parts.player_input, budget.prompt_limit / len(rendered))
        if not parts.player_input:
            raise ModelError(
                f"The system prompt alone does not fit a {budget.n_ctx}-token context "
                f"with {budget.max_tokens} tokens reserved for the answer; raise --n-ctx or "
                "lower --max-tokens.")
        rendered = narrator.render(compose(parts, budget.memories_first))
    if len(parts.player_input) < original_length:
        notices.append(f"Your action was shortened to {len(parts.player_input)} characters "
                       "to fit the model's context.")
        dropped["input"] = original_length - len(parts.player_input)
    return PromptPlan(rendered, sections_of(rendered, dropped), parts, notices)


def _fit_memories(narrator: Narrator, parts: PromptParts, cap: int) -> int:
    """Keep the best memories whose lines fit the cap; returns how many were dropped."""
    kept, used = [], 0
    for memory in parts.memories:
        cost = narrator.count_tokens(f"- {memory.text}\n")
        if used + cost > cap:
            break
        kept.append(memory)
        used += cost
    dropped = len(parts.memories) - len(kept)
    parts.memories = kept
    return dropped


def _fit_summary(narrator: Narrator, parts: PromptParts, cap: int) -> int:
    """An over-long summary loses its oldest sentences; returns characters dropped."""
    original = len(parts.summary)
    sentences = split_sentences(parts.summary)
    while sentences and narrator.count_tokens(" ".join(sentences)) > cap:
        sentences.pop(0)
    parts.summary = " ".join(sentences)
    return original - len(parts.summary)


def split_sentences(text: str) -> list[str]:
    """Split after . ! ? or … (and a closing quote right after them)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _shorten(text: str, ratio: float) -> str:
    """Cut text to about ratio of its length (a little less), at a word boundary."""
    target = int(len(text) * min(ratio, 1.0) * 0.9)
    cut = text[:target]
    if " " in cut[target // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip()


def system_prompt(prompts_dir: Path, world: World) -> str:
    """The narrator's instructions with the world filled in: identical every turn."""
    path = prompts_dir / SYSTEM_PROMPT_FILE
    template = string.Template(path.read_text(encoding="utf-8"))
    return template.safe_substitute(title=world.title, setting=world.setting).strip()
