"""Slash commands. Each is registered once with its usage and one-line help; /help and
the TUI's completion are generated from this registry. Handlers return a Reply."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from storyteller.engine.reply import ChunkCallback, Reply
from storyteller.errors import SaveError
from storyteller.memory.entries import NOTES
from storyteller.memory.view import listing_order
from storyteller.storage.export import EXPORT_FORMATS, export_campaign

if TYPE_CHECKING:
    from storyteller.engine.game import Game
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
    name, _, argument = text.partition(" ")
    name = ALIASES.get(name.lower(), name.lower())
    argument = argument.strip()
    found = COMMANDS.get(name)
    if found is None:
        shown = name if len(name) <= 40 else name[:40] + "…"
        return Reply(message=f"Unknown command {shown}; type /help for the commands.")
    if found.argument == "none" and argument:
        return Reply(message=f"{name} takes no arguments; type /help for the commands.")
    if found.argument == "required" and not argument:
        return Reply(message=f"Usage: {found.usage}. {found.help}")
    return found.handler(CommandContext(game, argument, on_chunk, cancel))


# -- the core commands --------------------------------------------------------

@command("/help", "this list", aliases=("/?",))
def _help(context: CommandContext) -> Reply:
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


def _answer_errors(handler: Callable[[CommandContext], Reply]):
    """A command's campaign problem (a bad name, a full disk) is its one-line answer."""
    def answered(context: CommandContext) -> Reply:
        try:
            return handler(context)
        except SaveError as error:
            return Reply(message=str(error))
    return answered


@command("/save", "keep a checkpoint of the story (every turn is saved anyway)",
         usage="/save NAME", argument="optional")
@_answer_errors
def _save(context: CommandContext) -> Reply:
    if not context.argument:
        return Reply(message="Every turn is saved as you play. /save NAME keeps a checkpoint "
                             "you can come back to with /load NAME.")
    return context.game.save_checkpoint(context.argument)


@command("/load", "go back to a checkpoint (the story now is kept as one first); "
         "without NAME, list them", usage="/load [NAME]", argument="optional")
@_answer_errors
def _load(context: CommandContext) -> Reply:
    if not context.argument:
        return context.game.list_checkpoints()
    return context.game.load_checkpoint(context.argument)


@command("/export", "write the story to exports/ as Markdown and JSON (or: /export "
         f"{'|'.join(EXPORT_FORMATS)})", usage=f"/export [{'|'.join(EXPORT_FORMATS)}]",
         argument="optional")
@_answer_errors
def _export(context: CommandContext) -> Reply:

    formats = [context.argument.lower()] if context.argument else ["md", "json"]
    if formats[0] not in EXPORT_FORMATS:
        return Reply(message=f"Usage: /export [{'|'.join(EXPORT_FORMATS)}]; "
                             f"{context.argument!r} is not a format.")
    game = context.game
    paths = [export_campaign(game.campaign, game.world, fmt) for fmt in formats]
    return Reply(message="Exported: " + ", ".join(str(path) for path in paths))


@command("/quit", "leave (the story is saved after every turn)", aliases=("/exit",))
def _quit(context: CommandContext) -> Reply:
    return Reply(message="Saved. Farewell, traveler.", quit=True)


# -- memory -------------------------------------------------------------------

LISTED_MEMORIES = 40  # /memory shows at most this many lines
MEMORY_OFF = "The story memory is off in this game."


def _needs_memory(handler: Callable[[CommandContext, StoryMemory], Reply]):
    """A memory command answers MEMORY_OFF in a game that has no memory."""
    @functools.wraps(handler)
    def checked(context: CommandContext) -> Reply:
        if context.game.memory is None:
            return Reply(message=MEMORY_OFF)
        return handler(context, context.game.memory)
    return checked


@command("/remember", "pin a fact the story must always keep", usage="/remember TEXT",
         argument="required")
@_needs_memory
def _remember(context: CommandContext, memory: StoryMemory) -> Reply:
    entry, new = memory.remember(context.argument)
    if not new:
        return Reply(message=f"Already remembered as {entry.id}.")
    return Reply(message=f"Remembered, always: {entry.text} ({entry.id}; "
                         f"/forget {entry.id} drops it).")


FORGET_NOTES = "notes"


@command("/forget", "drop a memory by its id (/memory shows ids); /forget notes drops "
         "every note the story took", usage="/forget ID|notes", argument="required")
@_needs_memory
def _forget(context: CommandContext, memory: StoryMemory) -> Reply:
    if context.argument.casefold() == FORGET_NOTES:
        dropped = memory.forget_notes()
        return Reply(message=f"Forgotten: {dropped} notes (the world's lore and your pins "
                             "stay)." if dropped else "There are no notes to forget.")
    entry = memory.forget(context.argument)
    if entry is None:
        return Reply(message=f"No memory with id {context.argument!r}; /memory lists them.")
    return Reply(message=f"Forgotten: {_line(entry.text)}")


@command("/memory", "what the story remembers, or what a query brings back",
         usage="/memory [QUERY]", argument="optional")
@_needs_memory
def _memory(context: CommandContext, memory: StoryMemory) -> Reply:

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
    lines += [f"  {'pinned ' if e.pinned else ''}{'note ' if e.source == NOTES else ''}"
              f"{e.kind:9} {e.id}  {_line(e.text)}"
              for e in entries[:LISTED_MEMORIES]]
    if len(entries) > LISTED_MEMORIES:
        lines.append(f"  … and {len(entries) - LISTED_MEMORIES} more: /memory QUERY finds them.")
    return Reply(message="\n".join(lines))


def _line(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
