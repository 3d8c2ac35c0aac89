"""F3 / /inspect: the last turn's prompt, section by section, with token counts, a bar
of how the context was spent, and what was left out to fit."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Collapsible, Footer, Static

from storyteller.context.prompt import PromptPlan
from storyteller.engine.reply import Reply
from storyteller.engine.trace import TurnTrace
from storyteller.tui.widgets import context_bar, context_legend, context_segments

DROPPED_UNITS = {"history": "turn", "memories": "memory", "input": "character",
                 "pinned": "fact", "summary": "character"}


def section_texts(plan: PromptPlan | None) -> dict[str, str]:
    """The text each prompt section contributed, as sent (template wrappers aside);
    the player's earlier actions in the history are marked with '>'."""
    pieces: dict[str, list[str]] = {}
    for message in plan.rendered.messages if plan else []:
        for part in message.parts:
            text = part.text.strip()
            if part.section == "history" and message.role == "user":
                text = f"> {text}"
            pieces.setdefault(part.section, []).append(text)
    return {section: "\n\n".join(texts) for section, texts in pieces.items()}


def dropped_summary(sections: list[dict]) -> str:
    dropped = [(s["name"], s["dropped"]) for s in sections if s.get("dropped")]
    if not dropped:
        return "Nothing was dropped: the whole story so far fit."
    pieces = []
    for name, count in dropped:
        unit = DROPPED_UNITS.get(name, "item")
        pieces.append(f"{count} {unit}{'s' if count != 1 else ''} of {name}")
    return "Dropped to fit: " + ", ".join(pieces) + "."


def cache_line(trace: TurnTrace) -> str:
    return (f"{trace.reused_tokens} tokens reused from the cache, {trace.evaluated_tokens} "
            f"evaluated after Enter · first word after {trace.ttft_seconds:.2f} s")


class ContextBar(Widget):
    """How n_ctx was spent, as wide as the screen."""

    def __init__(self, trace: TurnTrace, **kwargs):
        super().__init__(**kwargs)
        self.segments = context_segments(trace.sections, trace.completion_tokens)
        self.n_ctx = trace.n_ctx

    def render(self) -> Text:
        bar = context_bar(self.segments, self.n_ctx, max(self.size.width, 10))
        return Text("\n").join([bar, context_legend(self.segments, self.n_ctx)])


class PromptInspector(Screen):
    BINDINGS = [Binding("escape,f3,q", "app.pop_screen", "Back to the story")]

    def __init__(self, reply: Reply | None):
        super().__init__()
        self.trace = reply.trace if reply else None
        self.plan = reply.plan if reply else None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="inspector") as body:
            body.border_title = "Prompt inspector · Esc returns to the story"
            if self.trace is None:
                yield Static("No turn narrated yet in this session: play a turn, then press "
                             "F3 (or type /inspect).", classes="note")
            else:
                yield from self._trace_widgets(self.trace)
        yield Footer()

    def _trace_widgets(self, trace: TurnTrace):
        used = trace.prompt_tokens + trace.completion_tokens
        yield Static(f"Turn {trace.turn} · prompt {trace.prompt_tokens} + answer "
                     f"{trace.completion_tokens} = {used} of {trace.n_ctx} tokens "
                     f"({trace.max_tokens} reserved for the answer) · {trace.model}",
                     id="inspector-head", markup=False)
        yield Static(cache_line(trace), id="inspector-cache", markup=False)
        yield ContextBar(trace, id="inspector-bar")
        yield Static(dropped_summary(trace.sections), id="inspector-dropped", markup=False)
        texts = section_texts(self.plan)
        for section in trace.sections:
            title = f"{section['name']} · {section['tokens']} tokens"
            if section.get("dropped"):
                title += f" · {section['dropped']} dropped"
            text = texts.get(section["name"], "")
            if not texts and section["name"] == "system":
                text = trace.prompt  # a trace without its plan: the whole prompt at once
            # the system prompt is long and the same every turn; empty sections say nothing
            folded = section["name"] == "system" or not section["tokens"]
            with Collapsible(title=title, collapsed=folded,
                             classes="inspector-section"):
                yield Static(text or "(empty)", markup=False)
