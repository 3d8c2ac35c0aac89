"""Prefill while the player reads: once a turn is recorded, the narrator's context
evaluates the next prompt's stable prefix (everything before the per-turn memories and
input) in the background, so after Enter only the new action is read.

Only a backend that keeps its prompt cache (llama.cpp: generation.Prefilling) is asked;
a server backend gets nothing. Any input cancels a running prefill first: the narrator
checks between small batches, so a turn waits for one batch at most, and what a
cancelled prefill left in the cache is only ever reused up to the tokens it shares with
the prompt that comes next (llama.cpp compares token by token).

A new layout (a new summary, a new scene's recalled block) changes the prompt early on,
so everything after that point is read again: more than one think time may be needed.
It is prefilled aside, in a side copy of the cache that a turn never waits for, over as
many think times as it takes; turns keep the layout in use (its cache stays live) until
the side copy holds the whole new prefix, and only then switch to it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from storyteller.errors import StorytellerError
from storyteller.generation import Narrator

log = logging.getLogger(__name__)


class Prefill:
    def __init__(self, narrator: Narrator | None,
                 next_prefixes: Callable[[], tuple[list[int], list[int] | None]],
                 adopt: Callable[[Callable[[], bool]], bool] = lambda cached: False):
        """next_prefixes() gives the tokens to prefill: the next turn's stable prefix as
        turns are laid out now, and the one a new layout would have (or None);
        adopt(cached) puts the new layout in use if cached() says the narrator's cache
        holds its prefix. Without a narrator (the prefill setting off), nothing is
        prefilled."""
        self._narrator = narrator if getattr(narrator, "prefill", None) else None
        self._next_prefixes = next_prefixes
        self._adopt = adopt
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.evaluated = 0  # tokens the last prefill evaluated
        self.tokens: list[int] = []  # the prefix the live cache holds after the last one
        self.adopted = 0  # new layouts put in use

    @property
    def enabled(self) -> bool:
        return self._narrator is not None

    def start(self) -> None:
        """Prefill the next turn's prefix in the background (cancelling any running)."""
        if not self.enabled:
            return
        self.cancel()
        self._cancel = cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(cancel,), name="prefill",
                                        daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop the running prefill within one batch; does not wait for it."""
        self._cancel.set()

    def wait(self) -> None:
        """Until the running prefill is over (for closing, tests and benchmarks)."""
        if self._thread is not None:
            self._thread.join()

    def _run(self, cancel: threading.Event) -> None:
        try:
            current, candidate = self._next_prefixes()
            if cancel.is_set():
                return
            self.tokens, self.evaluated = current, 0
            self.evaluated = self._narrator.prefill(current, cancel)
            if candidate is not None and not cancel.is_set():
                self._prefill_layout(candidate, cancel)
        except StorytellerError as error:  # a failing memory index: the turn will say so
            log.warning("prefill skipped: %s", error)
        except Exception:  # a bug here must never take the game down
            log.exception("prefill failed")

    def _prefill_layout(self, tokens: list[int], cancel: threading.Event) -> None:
        narrator = self._narrator
        self.evaluated += narrator.prefill(tokens, cancel, aside=True)
        if self._adopt(lambda: narrator.end_aside(None if cancel.is_set() else tokens)):
            self.tokens = tokens
            self.adopted += 1
