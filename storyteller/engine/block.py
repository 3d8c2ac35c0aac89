"""The recalled block: what the current scene needs from the past (the lore the last turns
named, the old turns that resemble them), in the prompt before the summary and the
history.

Everything after it is re-read when it changes, so it changes only when the scene
changes (most of what the scene now recalls is not in the block) or when it no longer
holds (a turn taken back); a new summary leaves it as it is. An ordinary turn leaves it
byte-identical and pays nothing for it; with the prefill, a new scene's block reaches a
turn only once it has been read in the background (engine/prefill.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storyteller.context.prompt import PromptMemory
from storyteller.storage.transcript import Turn

if TYPE_CHECKING:
    from storyteller.memory.recall import Recalled
    from storyteller.memory.story import StoryMemory

BLOCK_ITEMS = 24  # candidates kept; the prompt's budget decides how many are shown
SCENE_OVERLAP = 0.5  # below this share of the block still recalled, the scene changed


def prompt_memory(item: Recalled) -> PromptMemory:
    if item.turn is not None:
        return PromptMemory(item.entry.id, "event", item.excerpt or item.turn.output,
                            item.score, action=item.turn.input, named=item.needed)
    return PromptMemory(item.entry.id, item.entry.kind, item.text, item.score,
                        named=item.needed)


class RecalledBlock:
    def __init__(self):
        self.items: list[Recalled] = []
        self.built = False
        self.refreshes = 0

    @property
    def ids(self) -> set[str]:
        return {item.entry.id for item in self.items}

    def memories(self) -> list[PromptMemory]:
        return [prompt_memory(item) for item in self.items]

    def refresh(self, memory: StoryMemory, history: list[Turn], shown: list[Turn], now: int,
                hide_turn: int | None = None, opening: str = "",
                follow_scene: bool = True) -> bool:
        """Rebuild the block if it no longer holds (`history`: every turn before this one,
        `shown`: those the prompt shows verbatim; before the first turn, the `opening` sets
        the scene), or, with follow_scene, if the scene moved on; returns whether it did."""
        if not follow_scene and self.built and not self._invalid(history, shown):
            return False
        scene = shown or ([Turn(0, "", opening)] if opening and not history else [])
        candidates = memory.scene(scene, now, hide_turn)[:BLOCK_ITEMS]
        if not self._stale(candidates, history, shown):
            return False
        self.items = candidates
        self.built = True
        self.refreshes += 1
        return True

    def _stale(self, candidates: list[Recalled], history: list[Turn], shown: list[Turn],
               ) -> bool:
        if not self.built or self._invalid(history, shown):
            return True
        if not self.items:
            return bool(candidates)
        still = self.ids & {item.entry.id for item in candidates[:len(self.items)]}
        return len(still) < SCENE_OVERLAP * len(self.items)

    def _invalid(self, history: list[Turn], shown: list[Turn]) -> bool:
        """The block no longer holds: a turn of it was taken back or loaded over, or the
        history shows it now."""
        live = {turn.number: turn for turn in history}
        oldest_shown = shown[0].number if shown else len(history) + 1
        return any(item.turn is not None and (live.get(item.turn.number) != item.turn
                                              or item.turn.number >= oldest_shown)
                   for item in self.items)
