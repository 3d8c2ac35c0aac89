"""Stores derived from the transcript (the rolling summary, the story memory), kept in
step with it through one small interface, told of each change to the story once."""

from __future__ import annotations

from typing import Protocol

from storyteller.storage.transcript import Turn


class DerivedStore(Protocol):
    def record(self, turn: Turn) -> None:
        """A turn was saved: take it in, in the background. A turn never waits for this
        (the previous turn is in the next prompt verbatim)."""

    def forget_from(self, number: int) -> None:
        """The turns from `number` on were taken back (undo, retry, edit, /load)."""

    def settle(self) -> None:
        """Wait for the background work: headless runs, tests and closing only."""


class DerivedStores:
    def __init__(self, stores: list[DerivedStore]):
        self.stores = stores

    def record(self, turns: list[Turn]) -> None:
        for turn in turns:
            for store in self.stores:
                store.record(turn)

    def forget_from(self, number: int) -> None:
        for store in self.stores:
            store.forget_from(number)

    def settle(self) -> None:
        for store in self.stores:
            store.settle()
