"""F1 / /help: the keys and every command, generated from the command registry."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from storyteller.tui.screen_commands import command_rows

KEYS = [
    ("Enter", "do what you typed: `look around`, `ask Maren about the stone`"),
    ("Up / Down", "earlier and later lines you typed"),
    ("Tab", "complete a /command (again: the next match)"),
    ("Esc", "stop the narration; the turn is not saved and your action is put back"),
    ("Ctrl+Z", "undo the last turn"),
    ("F1", "this help"),
    ("F2", "memory browser"),
    ("F3", "prompt inspector"),
    ("F4", "settings"),
    ("Ctrl+B", "show or hide the side panel"),
    ("Ctrl+T", "light / dark theme"),
    ("Ctrl+Q", "quit (every turn is already saved)"),
]


def two_columns(title: str, rows: list[tuple[str, str]]) -> Text:
    width = max(len(first) for first, _ in rows)
    lines = [Text(title, style="bold underline")]
    for first, second in rows:
        line = Text(first.ljust(width), style="bold")
        line.append(f"  {second}")
        lines.append(line)
    return Text("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog") as box:
            box.border_title = "Help · Esc closes"
            yield Static(two_columns("Keys", KEYS), id="help-keys")
            yield Static(two_columns("Commands", command_rows()), id="help-commands")
