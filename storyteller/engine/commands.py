"""Slash commands. Each is registered once with its usage and one-line help; /help and
the TUI's completion are generated from this registry. Handlers return a Reply."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from storyteller.engine.game import ChunkCallback, Game, Reply
    from storyteller.memory.story import StoryMemory

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


@command("/quit", "leave (the story is saved after every turn)", aliases=("/exit",))
def _quit(context: CommandContext) -> Reply:
    from storyteller.engine.game import Reply

    return Reply(message="Saved. Farewell, traveler.", quit=True)


# -- memory -------------------------------------------------------------------

LISTED_MEMORIES = 40  # /memory shows at most this many lines
MEMORY_OFF = "The story memory is off in this game."


def _needs_memory(handler: Callable[[CommandContext, StoryMemory], Reply]):
    """A memory command answers MEMORY_OFF in a game that has no memory."""
    @functools.wraps(handler)
    def checked(context: CommandContext) -> Reply:
        from storyteller.engine.game import Reply

        if context.game.memory is None:
            return Reply(message=MEMORY_OFF)
        return handler(context, context.game.memory)
    return checked


@command("/remember", "pin a fact the story must always keep", usage="/remember TEXT",
         argument="required")
@_needs_memory
def _remember(context: CommandContext, memory: StoryMemory) -> Reply:
    from storyteller.engine.game import Reply

    entry, new = memory.remember(context.argument)
    if not new:
        return Reply(message=f"Already remembered as {entry.id}.")
    return Reply(message=f"Remembered, always: {entry.text} ({entry.id}; "
                         f"/forget {entry.id} drops it).")


@command("/forget", "drop a memory by its id (/memory shows ids)", usage="/forget ID",
         argument="required")
@_needs_memory
def _forget(context: CommandContext, memory: StoryMemory) -> Reply:
    from storyteller.engine.game import Reply

    entry = memory.forget(context.argument)
    if entry is None:
        return Reply(message=f"No memory with id {context.argument!r}; /memory lists them.")
    return Reply(message=f"Forgotten: {_line(entry.text)}")


@command("/memory", "what the story remembers, or what a query brings back",
         usage="/memory [QUERY]", argument="optional")
@_needs_memory
def _memory(context: CommandContext, memory: StoryMemory) -> Reply:
    from storyteller.engine.game import Reply
    from storyteller.memory.story import listing_order

    query = context.argument
    if query:
        recall = memory.recall([], query, context.game.campaign.next_turn_number)
        found = recall.pinned + recall.memories
        lines = [f"What '{query}' brings back ({len(found)}, best first within each group):"]
        lines += [f"  {item.score:4.2f} {item.via:7} {item.entry.id}  {_line(item.text)}"
                  for item in found]
        return Reply(message="\n".join(lines), notices=recall.notices)
    entries = listing_order(memory.entries())
    lines = [f"The story remembers {len(entries)} things and {len(memory.live_events())} "
             "story passages (/memory QUERY searches them; /forget ID drops one):"]
    lines += [f"  {'pinned ' if e.pinned else ''}{e.kind:9} {e.id}  {_line(e.text)}"
              for e in entries[:LISTED_MEMORIES]]
    if len(entries) > LISTED_MEMORIES:
        lines.append(f"  … and {len(entries) - LISTED_MEMORIES} more: /memory QUERY finds them.")
    return Reply(message="\n".join(lines))


def _line(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
