"""Which /commands the terminal UI answers itself (they open a screen); every other one
goes to the engine's registry."""

from __future__ import annotations

from dataclasses import dataclass

from storyteller.engine.commands import ALIASES, COMMANDS


@dataclass(frozen=True)
class ScreenCommand:
    usage: str
    help: str


SCREEN_COMMANDS = {
    "/help": ScreenCommand("/help", "the keys and commands (F1)"),
    "/memory": ScreenCommand("/memory [SEARCH]", "browse, edit, pin and delete what the story "
                                                 "remembers (F2)"),
    "/inspect": ScreenCommand("/inspect", "the last turn's prompt, section by section (F3)"),
    "/settings": ScreenCommand("/settings", "sampling and content-log settings (F4)"),
    "/theme": ScreenCommand("/theme", "switch between the light and dark theme (Ctrl+T)"),
}

def canonical(name: str) -> str:
    name = name.lower()
    return ALIASES.get(name, name)


def command_names() -> list[str]:
    """Every command the input line completes, alphabetically."""
    return sorted(set(COMMANDS) | set(SCREEN_COMMANDS))


def command_rows() -> list[tuple[str, str]]:
    """(usage, help) for the help screen, in completion order."""
    rows = []
    for name in command_names():
        entry = SCREEN_COMMANDS.get(name) or COMMANDS[name]
        rows.append((entry.usage, entry.help))
    return rows
