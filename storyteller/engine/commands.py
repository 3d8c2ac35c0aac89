"""Slash commands. Each is registered once with its usage and one-line help; /help and
the TUI's completion are generated from this registry. Handlers return a Reply."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from storyteller.engine.game import ChunkCallback, Game, Reply

Argument = Literal["none", "optional", "required"]


@dataclass(frozen=True)
class CommandContext:
    game: Game
    argument: str  # the text after the command name, stripped
    on_chunk: ChunkCallback | None
    cancel: threading.Event | None


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    argument: Argument
    handler: Callable[[CommandContext], Reply]


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}


def command(name: str, help: str, usage: str = "", argument: Argument = "none",
            aliases: tuple[str, ...] = ()):
    """Register a handler as /name."""
    def register(handler: Callable[[CommandContext], Reply]):
        COMMANDS[name] = Command(name, usage or name, help, argument, handler)
        for alias in aliases:
            ALIASES[alias] = name
        return handler
    return register


def help_text() -> str:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = ["Type what you do, e.g. `look around` or `ask Maren about the stone`.",
             "Commands:"]
    lines += [f"  {c.usage.ljust(width)}  {c.help}" for c in COMMANDS.values()]
    return "\n".join(lines)


def run_command(game: Game, text: str, on_chunk: ChunkCallback | None,
                cancel: threading.Event | None) -> Reply:
    from storyteller.engine.game import Reply

    name, _, argument = text.partition(" ")
    name = ALIASES.get(name.lower(), name.lower())
    argument = argument.strip()
    found = COMMANDS.get(name)
    if found is None:
        return Reply(message=f"Unknown command {name}; type /help for the commands.")
    if found.argument == "none" and argument:
        return Reply(message=f"{name} takes no arguments; type /help for the commands.")
    if found.argument == "required" and not argument:
        return Reply(message=f"Usage: {found.usage}. {found.help}")
    return found.handler(CommandContext(game, argument, on_chunk, cancel))


# -- the core commands --------------------------------------------------------

@command("/help", "this list", aliases=("/?",))
def _help(context: CommandContext) -> Reply:
    from storyteller.engine.game import Reply

    return Reply(message=help_text())


@command("/undo", "take back the last turn")
def _undo(context: CommandContext) -> Reply:
    return context.game.undo()


@command("/retry", "tell the last turn again, differently")
def _retry(context: CommandContext) -> Reply:
    return context.game.retry(context.on_chunk, context.cancel)


@command("/edit", "change your last action and tell it again", usage="/edit NEW ACTION",
         argument="required")
def _edit(context: CommandContext) -> Reply:
    return context.game.edit(context.argument, context.on_chunk, context.cancel)


@command("/quit", "leave (the story is saved after every turn)", aliases=("/exit",))
def _quit(context: CommandContext) -> Reply:
    from storyteller.engine.game import Reply

    return Reply(message="Saved. Farewell, traveler.", quit=True)
