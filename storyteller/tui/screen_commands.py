"""Which /commands the terminal UI answers itself (they open a screen), which ones it
hands to the engine's registry, and which ones belong to parts not in this version."""

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

# Engine commands that other parts of storyteller add to the registry. Until they are
# there, the UI says so in one line instead of "unknown command".
PLANNED_COMMANDS = {
    "/save": ScreenCommand("/save NAME", "keep a checkpoint of the story"),
    "/load": ScreenCommand("/load NAME", "go back to a checkpoint"),
    "/export": ScreenCommand("/export", "write the story as a Markdown file"),
    "/remember": ScreenCommand("/remember FACT", "pin a fact the narrator must keep"),
    "/forget": ScreenCommand("/forget NAME", "drop a remembered fact"),
}


def canonical(name: str) -> str:
    name = name.lower()
    return ALIASES.get(name, name)


def is_missing(name: str) -> bool:
    """A planned engine command that this version does not have yet."""
    return name in PLANNED_COMMANDS and name not in COMMANDS


def missing_message(name: str) -> str:
    return (f"{name} is not available in this version of storyteller yet; "
            "/help lists what you can do now.")


def command_names() -> list[str]:
    """Every command the input line completes, alphabetically."""
    return sorted(set(COMMANDS) | set(SCREEN_COMMANDS) | set(PLANNED_COMMANDS))


def command_rows() -> list[tuple[str, str]]:
    """(usage, help) for the help screen, in completion order."""
    rows = []
    for name in command_names():
        if name in SCREEN_COMMANDS:
            entry = SCREEN_COMMANDS[name]
            rows.append((entry.usage, entry.help))
        elif name in COMMANDS:
            rows.append((COMMANDS[name].usage, COMMANDS[name].help))
        else:
            entry = PLANNED_COMMANDS[name]
            rows.append((entry.usage, f"{entry.help} (not in this version yet)"))
    return rows
