"""Build the prompt for one turn and make it fit the model's context.

Sections, in a fixed order so consecutive turns share the longest prefix (llama.cpp
then re-evaluates only the new suffix): system prompt and world (byte-identical every
turn) → recent history, oldest first → the player's input. Later sections (pinned
facts, summary, retrieved memories) slot in between without changing this contract.

The budget: n_ctx minus the answer's max_tokens minus a small margin. Over budget,
the oldest history goes first; if the input alone is still too long, it is shortened
with a notice. The model never receives a prompt that does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storyteller.campaign import Turn
from storyteller.narrator.base import Message, Narrator, NarratorError, RenderedPrompt

SAFETY_MARGIN = 8  # tokens kept free between prompt + answer and n_ctx


@dataclass
class Section:
    name: str
    tokens: int
    dropped: int = 0  # items left out to fit (turns for history, characters for input)

    def to_json(self) -> dict:
        return {"name": self.name, "tokens": self.tokens, "dropped": self.dropped}


@dataclass
class PromptPlan:
    rendered: RenderedPrompt
    sections: list[Section]
    player_input: str  # what the model was given, possibly shortened
    notices: list[str] = field(default_factory=list)


def history_messages(turns: list[Turn]) -> list[Message]:
    messages: list[Message] = []
    for turn in turns:
        messages.append(Message("user", turn.input, "history"))
        messages.append(Message("assistant", turn.output, "history"))
    return messages


def compose(system_text: str, opening: str, history: list[Turn],
            player_input: str) -> list[Message]:
    """The opening scene rides with the system prompt: it never changes, and it shows
    the model the voice to narrate in."""
    stable = [Message("system", system_text, "system")]
    if opening:
        stable.append(Message("assistant", opening, "system"))
    return [
        *stable,
        *history_messages(history),
        Message("user", player_input, "input"),
    ]


def count_sections(rendered: RenderedPrompt, names: list[str]) -> list[Section]:
    """Sum each message's tokens into its section, keeping the sections' order."""
    totals: dict[str, int] = dict.fromkeys(names, 0)
    for message, tokens in zip(rendered.messages, rendered.message_tokens, strict=True):
        totals[message.section] += tokens
    return [Section(name, tokens) for name, tokens in totals.items()]


def build_prompt(narrator: Narrator, system_text: str, opening: str, history: list[Turn],
                 player_input: str, max_tokens: int, history_turns: int) -> PromptPlan:
    budget = narrator.n_ctx - max_tokens - SAFETY_MARGIN
    kept = history[-history_turns:] if history_turns else []
    dropped_turns = len(history) - len(kept)
    rendered = narrator.render(compose(system_text, opening, kept, player_input))
    while len(rendered) > budget and kept:
        kept = kept[1:]
        dropped_turns += 1
        rendered = narrator.render(compose(system_text, opening, kept, player_input))
    notices: list[str] = []
    original_length = len(player_input)
    while len(rendered) > budget:
        player_input = _shorten(player_input, budget / len(rendered))
        if not player_input:
            raise NarratorError(
                f"The system prompt alone does not fit a {narrator.n_ctx}-token context "
                f"with {max_tokens} tokens reserved for the answer; raise --n-ctx or "
                "lower --max-tokens.")
        rendered = narrator.render(compose(system_text, opening, kept, player_input))
    if len(player_input) < original_length:
        notices.append(f"Your action was shortened to {len(player_input)} characters "
                       "to fit the model's context.")
    sections = count_sections(rendered, ["system", "history", "input"])
    sections[1].dropped = dropped_turns
    sections[2].dropped = original_length - len(player_input)
    return PromptPlan(rendered, sections, player_input, notices)


def _shorten(text: str, ratio: float) -> str:
    """Cut text to about ratio of its length (a little less), at a word boundary."""
    target = int(len(text) * min(ratio, 1.0) * 0.9)
    cut = text[:target]
    if " " in cut[target // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip()
