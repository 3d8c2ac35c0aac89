"""Build the prompt for one turn and make it fit the model's context.

Sections, in a fixed order so consecutive turns share the longest prefix (llama.cpp
then re-evaluates only the new suffix):

    system  (system prompt + world + opening: byte-identical every turn)
    pinned  (facts the player pinned; change rarely)
    summary (the story so far, for turns that left the history)
    history (recent turns, oldest first)
    memories (retrieved for this turn: volatile)
    input   (the player's action)

The budget is n_ctx minus the answer's max_tokens minus a small margin. Over budget,
the lowest-scored memories go first, then the oldest history turns; an input that is
still too long is shortened with a notice. The model never receives a prompt that does
not fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storyteller.campaign import Turn
from storyteller.narrator.base import Message, Narrator, NarratorError, Part, RenderedPrompt

SAFETY_MARGIN = 8  # tokens kept free between prompt + answer and n_ctx
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


def compose(parts: PromptParts) -> list[Message]:
    """Turn the parts into chat messages. History alternates user/assistant; pinned
    facts and the summary ride in the system message; retrieved memories ride in the
    final user message just before the action, so every chat template accepts it."""
    system = [Part("system", parts.system)]
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
    if parts.memories:
        remembered = "\n".join(f"- {memory.text}" for memory in parts.memories)
        final.append(Part("memories", f"(Remember:\n{remembered})\n\n"))
    final.append(Part("input", parts.player_input))
    messages.append(Message("user", tuple(final)))
    return messages


def sections_of(rendered: RenderedPrompt, dropped: dict[str, int]) -> list[Section]:
    return [Section(name, rendered.section_tokens.get(name, 0), dropped.get(name, 0))
            for name in SECTION_ORDER]


def build_prompt(narrator: Narrator, parts: PromptParts, max_tokens: int) -> PromptPlan:
    budget = narrator.n_ctx - max_tokens - SAFETY_MARGIN
    parts = PromptParts(**vars(parts))  # never change the caller's lists
    dropped = dict.fromkeys(SECTION_ORDER, 0)
    rendered = narrator.render(compose(parts))
    while len(rendered) > budget and (parts.memories or parts.history):
        if parts.memories:
            parts.memories = parts.memories[:-1]
            dropped["memories"] += 1
        else:
            parts.history = parts.history[1:]
            dropped["history"] += 1
        rendered = narrator.render(compose(parts))
    notices: list[str] = []
    original_length = len(parts.player_input)
    while len(rendered) > budget:
        parts.player_input = _shorten(parts.player_input, budget / len(rendered))
        if not parts.player_input:
            raise NarratorError(
                f"The system prompt alone does not fit a {narrator.n_ctx}-token context "
                f"with {max_tokens} tokens reserved for the answer; raise --n-ctx or "
                "lower --max-tokens.")
        rendered = narrator.render(compose(parts))
    if len(parts.player_input) < original_length:
        notices.append(f"Your action was shortened to {len(parts.player_input)} characters "
                       "to fit the model's context.")
        dropped["input"] = original_length - len(parts.player_input)
    return PromptPlan(rendered, sections_of(rendered, dropped), parts, notices)


def _shorten(text: str, ratio: float) -> str:
    """Cut text to about ratio of its length (a little less), at a word boundary."""
    target = int(len(text) * min(ratio, 1.0) * 0.9)
    cut = text[:target]
    if " " in cut[target // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip()
