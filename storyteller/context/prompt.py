"""Build the prompt for one turn and make it fit the model's context.

Sections, in a fixed order so consecutive turns share the longest prefix (llama.cpp then
re-evaluates only the new suffix, and the stable part can be evaluated before the player
presses Enter):

    system   (system prompt + world + opening: byte-identical every turn)
    pinned   (facts the player pinned; change rarely)
    recalled (what the scene needs from the past: kept while the scene lasts)
    summary  (the story so far, for turns that left the history: it changes with the
              history's front, which is read again then anyway)
    history  (recent turns verbatim, oldest first)
    memories (what this input needs that the sections above lack: volatile)
    input    (the player's action)

The budget is n_ctx minus the answer's max_tokens minus a small margin. Hard floors:
the system prompt, pinned facts (up to an eighth of the context: one too long for the
room left is cut at a sentence, like a memory, never left out unseen) and the input. The
summary and the recalled block are held to their shares, sized with a typical input (so
neither moves when this input is longer); the history is what the
rolling summary left. An ordinary action's memories (only what it names: recall's
`needed`; a past turn is narrowed by recall to its action and the sentence naming the
rare word) get the room left, at most a fortieth of the context or what their lead
sentences take: every token after the history is read anew on every turn. A
question about the past ("where did I hide the key?") may take the room of the older
history too, all but the newest RECENT_TURNS turns. A memory too long for the room left
is cut at a sentence and the next ones are still tried. Over the limit, this turn's
memories go first, then the oldest history, then the recalled block's last items; an
input that is still too long is shortened with a notice. The model never receives a
prompt that does not fit.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from storyteller.errors import ModelError
from storyteller.generation import SAFETY_MARGIN, Message, Narrator, Part, RenderedPrompt
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World
from storyteller.text import split_sentences

SYSTEM_PROMPT_FILE = "narrator.txt"
SECTION_ORDER = ("system", "pinned", "recalled", "summary", "history", "memories", "input")
RECENT_TURNS = 4  # the newest turns that a question's memories never push out
PINNED_FRACTION = 8  # pinned facts take at most this part of the context
ORDINARY_MEMORY_FRACTION = 40  # an ordinary action's own memories: at most n_ctx // 40
TURN_OVERHEAD_TOKENS = 10  # chat-template wrappers around one turn's two messages
# How memories are shown (chosen by measurement: see README, "What the model is given").
PINNED_HEADER = "Facts that stay true:"
SUMMARY_HEADER = "The story so far:"
RECALLED_HEADER = "Earlier in the story:"
TURN_MEMORY = "{action} {narration}"  # a past turn, as one memory line
MEMORY_LINE = "- {text}"
MEMORIES_FRAME = "({lines})\n\n"  # this turn's memories, before the action


@dataclass(frozen=True)
class PromptMemory:
    """A recalled memory as the prompt sees it: an entry's text, or a past turn (its
    action and the narration that answered it)."""

    id: str
    kind: str
    text: str  # for a past turn: its narration
    score: float
    action: str = ""  # for a past turn: what the player did
    named: bool = False  # an ordinary action names it (recall's `needed`)

    @property
    def said(self) -> str:
        """The memory as the prompt says it, on one line."""
        text = TURN_MEMORY.format(action=self.action, narration=self.text) if self.action \
            else self.text
        return " ".join(text.split())

    @property
    def line(self) -> str:
        return MEMORY_LINE.format(text=self.said)


@dataclass
class PromptParts:
    """Everything a turn's prompt may hold, before fitting."""

    system: str
    player_input: str
    opening: str = ""
    pinned: list[PromptMemory] = field(default_factory=list)  # in their stable order
    summary: str = ""
    recalled: list[PromptMemory] = field(default_factory=list)  # the scene's, best first
    history: list[Turn] = field(default_factory=list)
    memories: list[PromptMemory] = field(default_factory=list)  # this input's, best first
    asks_about_the_past: bool = False


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

    def stable_tokens(self) -> list[int]:
        """The tokens before this turn's own memories and input: what can be evaluated
        before the player presses Enter."""
        own = self.rendered.section_tokens.get("memories", 0) \
            + self.rendered.section_tokens.get("input", 0)
        return self.rendered.tokens[: len(self.rendered.tokens) - own]


def compose(parts: PromptParts) -> list[Message]:
    """Turn the parts into chat messages. Pinned facts, the recalled block and the summary
    ride in the system message; the history alternates user/assistant; this turn's
    memories ride in the final user message just before the action, so every chat
    template accepts them."""
    system = [Part("system", parts.system)]
    if parts.opening:
        system.append(Part("system", f"\n\nThe story begins:\n{parts.opening}"))
    if parts.pinned:
        facts = "\n".join(memory.line for memory in parts.pinned)
        system.append(Part("pinned", f"\n\n{PINNED_HEADER}\n{facts}"))
    if parts.recalled:
        lines = "\n".join(memory.line for memory in parts.recalled)
        system.append(Part("recalled", f"\n\n{RECALLED_HEADER}\n{lines}"))
    if parts.summary:
        system.append(Part("summary", f"\n\n{SUMMARY_HEADER}\n{parts.summary}"))
    messages = [Message("system", tuple(system))]
    for turn in parts.history:
        messages.append(Message.of("user", turn.input, "history"))
        messages.append(Message.of("assistant", turn.output, "history"))
    final: list[Part] = []
    if parts.memories:
        lines = "\n".join(memory.line for memory in parts.memories)
        final.append(Part("memories", MEMORIES_FRAME.format(lines=lines)))
    final.append(Part("input", parts.player_input))
    messages.append(Message("user", tuple(final)))
    return messages


def sections_of(rendered: RenderedPrompt, dropped: dict[str, int]) -> list[Section]:
    return [Section(name, rendered.section_tokens.get(name, 0), dropped.get(name, 0))
            for name in SECTION_ORDER]


@dataclass(frozen=True)
class BudgetShares:
    """How the flexible part of the context (what the hard floors and the answer's
    reserve leave) is shared: the summary and the recalled block are held to theirs; the
    history's share decides when the rolling summary starts."""

    summary: float = 0.15
    recalled: float = 0.20
    history: float = 0.55


@dataclass(frozen=True)
class Budget:
    n_ctx: int
    max_tokens: int
    shares: BudgetShares = BudgetShares()
    input_allowance: int = 64  # tokens set aside for a typical action when sizing shares

    @property
    def prompt_limit(self) -> int:
        """The most tokens a prompt may have: the answer and a margin must still fit."""
        return self.n_ctx - self.max_tokens - SAFETY_MARGIN

    def flexible(self, floor_tokens: int) -> int:
        return max(self.prompt_limit - floor_tokens, 0)

    def cap(self, section: str, floor_tokens: int) -> int:
        return int(getattr(self.shares, section) * self.flexible(floor_tokens))


Counter = Callable[[str], int]


def build_prompt(narrator: Narrator, parts: PromptParts, budget: Budget) -> PromptPlan:
    """Fit the parts to the budget (see the module's docstring). Every count that
    decides comes from a real render."""
    parts = replace(parts)  # never change the caller's lists
    count = narrator.count_tokens
    dropped = dict.fromkeys(SECTION_ORDER, 0)
    notices: list[str] = []
    parts.pinned, dropped["pinned"] = _fit_pinned(parts.pinned, count,
                                                  budget.n_ctx // PINNED_FRACTION)
    if dropped["pinned"]:
        notices.append(f"{dropped['pinned']} pinned facts did not fit the prompt; /memory "
                       "lists them, /forget ID drops one.")
    floors = len(narrator.render(compose(replace(parts, summary="", recalled=[], history=[],
                                                 memories=[]))))
    typical = floors - count(parts.player_input) + budget.input_allowance  # sizes shares
    dropped["summary"] = _fit_summary(parts, count, budget.cap("summary", typical))
    parts.recalled, dropped["recalled"] = fit_memories(parts.recalled, count,
                                                       budget.cap("recalled", typical))
    used = floors + _tokens(parts.summary, count) + sum(
        count(memory.line) + 1 for memory in parts.recalled)
    history = [_turn_tokens(turn, count) for turn in parts.history]
    if parts.asks_about_the_past:
        room = budget.prompt_limit - used - sum(history[-RECENT_TURNS:])
    else:  # what the input names gets room for its lead sentence at least
        room = min(max(budget.n_ctx // ORDINARY_MEMORY_FRACTION, _named_room(parts, count, budget)),
                   budget.prompt_limit - used - sum(history))
    parts.memories, dropped["memories"] = fit_memories(parts.memories, count, room)
    used += sum(count(memory.line) + 1 for memory in parts.memories)
    while parts.history and used + sum(history) > budget.prompt_limit:
        parts.history, history = parts.history[1:], history[1:]
        dropped["history"] += 1
    rendered = _render_within(narrator, parts, budget, dropped)
    original_length = len(parts.player_input)
    while len(rendered) > budget.prompt_limit:
        parts.player_input = _shorten(parts.player_input, budget.prompt_limit / len(rendered))
        if not parts.player_input:
            raise ModelError(
                f"The system prompt alone does not fit a {budget.n_ctx}-token context "
                f"with {budget.max_tokens} tokens reserved for the answer; raise --n-ctx or "
                "lower --max-tokens.")
        rendered = narrator.render(compose(parts))
    if len(parts.player_input) < original_length:
        notices.append(f"Your action was shortened to {len(parts.player_input)} characters "
                       "to fit the model's context.")
        dropped["input"] = original_length - len(parts.player_input)
    return PromptPlan(rendered, sections_of(rendered, dropped), parts, notices)


def _render_within(narrator: Narrator, parts: PromptParts, budget: Budget,
                   dropped: dict[str, int]) -> RenderedPrompt:
    """Render; while over the limit (the estimates run a little short), drop this turn's
    last memory, then the oldest history turn, then the recalled block's last item."""
    rendered = narrator.render(compose(parts))
    while len(rendered) > budget.prompt_limit:
        if parts.memories:
            parts.memories, section = parts.memories[:-1], "memories"
        elif parts.history:
            parts.history, section = parts.history[1:], "history"
        elif parts.recalled:
            parts.recalled, section = parts.recalled[:-1], "recalled"
        else:
            return rendered
        dropped[section] += 1
        rendered = narrator.render(compose(parts))
    return rendered


# On the first pass no memory takes more than this share of the memories' room, so a
# long one never pushes out the facts after it, while memories of ordinary length (a
# past turn) go in whole, best first, as plain retrieval would fill the room.
FIRST_PASS_SHARE = 3


def fit_memories(memories: list[PromptMemory], count: Counter, room: int,
                 ) -> tuple[list[PromptMemory], int]:
    """The memories, best first, that fit in `room` tokens: each, in order, as whole as
    a third of the room allows (at least its lead sentence; a past turn keeps its
    action); then each cut one, in order, as whole as the room left allows (cut at a
    sentence). Returns them and how many were left out."""
    share = room // FIRST_PASS_SHARE
    kept: dict[int, PromptMemory] = {}
    for position, memory in enumerate(memories):
        first = (memory if count(memory.line) + 1 <= min(share, room)
                 else _trimmed(memory, count, min(share, room))
                 or _trimmed(memory, count, room, sentences=1))
        if first is not None:
            kept[position] = first
            room -= count(first.line) + 1
    for position, first in kept.items():
        whole = memories[position]
        if first is whole:
            continue
        room += count(first.line) + 1
        kept[position] = (whole if count(whole.line) + 1 <= room
                          else _trimmed(whole, count, room) or first)
        room -= count(kept[position].line) + 1
    return list(kept.values()), len(memories) - len(kept)


def _fit_pinned(pinned: list[PromptMemory], count: Counter, room: int,
                ) -> tuple[list[PromptMemory], int]:
    """fit_memories, the shortest facts tried first: a long one (a character card's
    description) is cut to the room the others leave instead of pushing them out. They
    are shown in their own order, so the prompt's front stays the same from turn to turn."""
    kept, dropped = fit_memories(sorted(pinned, key=lambda memory: count(memory.line)),
                                 count, room)
    fitted = {memory.id: memory for memory in kept}
    return [fitted[memory.id] for memory in pinned if memory.id in fitted], dropped


def _trimmed(memory: PromptMemory, count: Counter, room: int,
             sentences: int | None = None) -> PromptMemory | None:
    """The memory cut to its first sentences (at most `sentences`) that fit, or None (a
    past turn keeps its action)."""
    kept = split_sentences(memory.text)[:sentences]
    while kept:
        cut = replace(memory, text=" ".join(kept))
        if count(cut.line) + 1 <= room:
            return cut
        kept.pop()
    return None


def _named_room(parts: PromptParts, count: Counter, budget: Budget) -> int:
    """The tokens the lead sentences of the memories the action names take."""
    leads = (_trimmed(memory, count, budget.prompt_limit, sentences=1)
             for memory in parts.memories if memory.named)
    return sum(count(lead.line) + 1 for lead in leads if lead is not None)


def _turn_tokens(turn: Turn, count: Counter) -> int:
    return count(turn.input) + count(turn.output) + TURN_OVERHEAD_TOKENS


def _tokens(text: str, count: Counter) -> int:
    return count(text) + 8 if text else 0


def _fit_summary(parts: PromptParts, count: Counter, cap: int) -> int:
    """An over-long summary loses its oldest sentences; returns characters dropped."""
    original = len(parts.summary)
    sentences = split_sentences(parts.summary)
    while sentences and count(" ".join(sentences)) > cap:
        sentences.pop(0)
    parts.summary = " ".join(sentences)
    return original - len(parts.summary)


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
