"""The story's one line of turns: a new turn, the last one told again (/retry, /edit),
/undo, and checkpoints (/save, /load). Each change reaches the transcript first (it is
the truth), then every derived store, once."""

from __future__ import annotations

from pathlib import Path

from storyteller.engine.derived import DerivedStores
from storyteller.storage.campaign import Campaign, CheckpointInfo
from storyteller.storage.transcript import Turn
from storyteller.text import shared_prefix


class Timeline:
    def __init__(self, campaign: Campaign, derived: DerivedStores):
        self.campaign = campaign
        self.derived = derived

    @property
    def turns(self) -> list[Turn]:
        return self.campaign.turns

    def append(self, turn: Turn) -> None:
        self.campaign.append_turn(turn)
        self.derived.record([turn])

    def replace_last(self, turn: Turn) -> Turn:
        """The last turn told again: one record, so a crash keeps one of the two."""
        old = self.campaign.replace_last_turn(turn)
        self.derived.forget_from(old.number)
        self.derived.record([turn])
        return old

    def undo(self) -> Turn | None:
        undone = self.campaign.undo()
        if undone is not None:
            self.derived.forget_from(undone.number)
        return undone

    def rejoin(self, number: int) -> None:
        """The derived stores follow the story again from turn `number` on (after a fork
        was resolved: they may hold the other branch's turns of those numbers)."""
        self.derived.forget_from(number)
        self.derived.record([turn for turn in self.turns if turn.number >= number])

    def save_checkpoint(self, name: str) -> Path:
        return self.campaign.save_checkpoint(name)

    def checkpoints(self) -> list[CheckpointInfo]:
        return self.campaign.checkpoints()

    def load_checkpoint(self, name: str) -> tuple[str, str]:
        """The story as it was at checkpoint `name`; returns (the checkpoint kept of the
        story before loading, the checkpoint loaded)."""
        before = list(self.campaign.turns)
        kept = self.campaign.load_checkpoint(name)
        shared = shared_prefix(before, self.campaign.turns)
        # What the derived stores made of turns the checkpoint does not share no longer holds.
        self.derived.forget_from(shared + 1)
        self.derived.record(self.campaign.turns[shared:])
        return kept, self.campaign.checkpoint_path(name).stem
