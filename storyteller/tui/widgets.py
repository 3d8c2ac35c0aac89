"""Small widgets of the game screen: the action input (history and / completion), the
context gauge, the status bar and the side panel of memory entries."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Static, TabbedContent, TabPane

from storyteller.memory.entries import MemoryEntry
from storyteller.memory.view import MemoryView

SECTION_COLORS = {
    "system": "dodger_blue2",
    "pinned": "magenta",
    "summary": "gold3",
    "history": "green3",
    "memories": "dark_cyan",
    "input": "orange3",
    "answer": "red3",
}
FREE_COLOR = "grey50"


class ActionInput(Input):
    """The input line: Up/Down walk through earlier lines, Tab completes a /command."""

    BINDINGS = [
        Binding("up", "history(-1)", "Earlier input", show=False),
        Binding("down", "history(1)", "Later input", show=False),
        Binding("tab", "complete", "Complete command", show=False),
    ]

    def __init__(self, commands: list[str], **kwargs):
        super().__init__(suggester=SuggestFromList(commands, case_sensitive=False), **kwargs)
        self.commands = commands
        self.history: list[str] = []
        self.history_index = 0
        self._completion_prefix: str | None = None

    def remember(self, text: str) -> None:
        if text.strip() and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self.history_index = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self.history_index = max(0, min(len(self.history), self.history_index + step))
        self.value = self.history[self.history_index] if self.history_index < len(
            self.history) else ""
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        """Cycle through the commands that start with what was typed."""
        prefix = self._completion_prefix
        if prefix is None or not self.value.startswith(prefix) or self.value not in self.commands:
            prefix = self.value.lower()
        if not prefix.startswith("/") or " " in prefix:
            self.app.action_focus_next()
            return
        matches = [name for name in self.commands if name.startswith(prefix)]
        if not matches:
            self.notify(f"No command starts with {prefix}; /help lists them.")
            return
        following = matches.index(self.value) + 1 if self.value in matches else 0
        self.value = matches[following % len(matches)]
        self.cursor_position = len(self.value)
        self._completion_prefix = prefix


def context_segments(sections: list[dict], completion_tokens: int) -> list[tuple[str, int]]:
    """The gauge's parts: each prompt section that holds tokens, then the answer."""
    segments = [(section["name"], int(section["tokens"])) for section in sections
                if section["tokens"]]
    if completion_tokens:
        segments.append(("answer", completion_tokens))
    return segments


def context_bar(segments: list[tuple[str, int]], n_ctx: int, width: int) -> Text:
    """A bar of `width` cells: each segment's share of n_ctx in its color, free space dim.
    Cells are given by cumulative rounding so the bar is exactly `width` wide."""
    bar = Text()
    used_cells, used_tokens = 0, 0
    for name, tokens in segments:
        used_tokens += tokens
        end = min(width, round(used_tokens / max(n_ctx, 1) * width))
        if end > used_cells:
            bar.append("█" * (end - used_cells), style=SECTION_COLORS.get(name, "white"))
            used_cells = end
    bar.append("░" * (width - used_cells), style=FREE_COLOR)
    return bar


def context_legend(segments: list[tuple[str, int]], n_ctx: int) -> Text:
    legend = Text()
    for name, tokens in segments:
        legend.append("■ ", style=SECTION_COLORS.get(name, "white"))
        legend.append(f"{name} {tokens}  ")
    free = n_ctx - sum(tokens for _, tokens in segments)
    legend.append("░ ", style=FREE_COLOR)
    legend.append(f"free {free}")
    return legend


class StatusBar(Static):
    """model · tok/s · context gauge · turn and autosave state. What does not fit the
    width is left out, model name first, so the state is always shown."""

    GAUGE_WIDTH = 12

    def show(self, model: str, state: str, tokens_per_second: float | None = None,
             segments: list[tuple[str, int]] | None = None, n_ctx: int = 0) -> None:
        pieces = [Text(model)]
        if tokens_per_second is not None:
            pieces.append(Text(f"{tokens_per_second:.0f} tok/s"))
        if segments is not None and n_ctx:
            used = sum(tokens for _, tokens in segments)
            gauge = Text("ctx ")
            gauge.append_text(context_bar(segments, n_ctx, self.GAUGE_WIDTH))
            gauge.append(f" {used}/{n_ctx}")
            pieces.append(gauge)
        pieces.append(Text(state))
        self.pieces = pieces
        self.update(self._fitted())

    def on_resize(self) -> None:
        if getattr(self, "pieces", None):
            self.update(self._fitted())

    def _fitted(self) -> Text:
        pieces = list(self.pieces)
        width = self.content_size.width or 80
        while len(pieces) > 1 and Text(" · ").join(pieces).cell_len > width:
            pieces.pop(0)
        return Text(" · ").join(pieces)


PANEL_TABS = {
    "Characters": ("character",),
    "Locations": ("location",),
    "Items": ("item",),
    "Plot": ("plot", "event"),
    "Lore": ("lore",),
}


def entry_line(entry: MemoryEntry) -> Text:
    line = Text("★ " if entry.pinned else "• ", style="bold")
    line.append(entry.name, style="bold")
    if entry.text:
        line.append(f": {entry.text}")
    return line


class SidePanel(Widget):
    """Tabs Characters, Locations, Items, Plot, filled from the story memory."""

    def compose(self) -> ComposeResult:
        with TabbedContent():
            for title in PANEL_TABS:
                with TabPane(title, id=f"tab-{title.lower()}"), VerticalScroll():
                    yield Static("", classes="panel-entries", markup=False)

    def refresh_entries(self, memory: MemoryView | None) -> None:
        for title, kinds in PANEL_TABS.items():
            target = self.query_one(f"#tab-{title.lower()} .panel-entries", Static)
            if memory is None:
                target.update("The story memory is off in this game.")
                continue
            entries = [entry for kind in kinds for entry in memory.entries(kind)]
            if not entries:
                target.update(f"No {title.lower()} yet: the story will fill this in.")
                continue
            lines = Text("\n").join(entry_line(entry) for entry in entries)
            target.update(lines)
