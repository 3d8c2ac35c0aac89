"""What the game answers to one line of player input, and the other values of a turn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from storyteller.context.prompt import PromptPlan
from storyteller.engine.trace import TurnTrace
from storyteller.storage.campaign import SaveState
from storyteller.storage.transcript import Turn

ChunkCallback = Callable[[str], None]


class TurnCancelled(Exception):
    """The player cancelled the narration; nothing was recorded."""


@dataclass
class Reply:
    """What the game answers to one line of player input."""

    message: str = ""  # for the player: help text, a notice, an error hint
    turn: Turn | None = None  # the turn that was narrated and recorded
    trace: TurnTrace | None = None
    undone: Turn | None = None  # the turn taken back by /undo or /retry
    quit: bool = False
    notices: list[str] = field(default_factory=list)
    plan: PromptPlan | None = None  # the prompt as sent, section by section (inspector)
    autosave: SaveState | None = None  # what is on disk after this line was played
    saved_checkpoint: str = ""  # a checkpoint written by /save, or kept before /load
    loaded_checkpoint: str = ""  # the checkpoint /load restored
