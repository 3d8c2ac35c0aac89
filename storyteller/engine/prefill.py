"""Prefill while the player reads: once a turn is recorded, the narrator's context
evaluates the next prompt's stable prefix (everything before the per-turn memories and
input) in the background, so after Enter only the new action is read.

Only a backend that keeps its prompt cache (llama.cpp: generation.Prefilling) is asked;
a server backend gets nothing. Any input cancels a running prefill first: the narrator
checks between small batches, so a turn waits for one batch at most, and what a
cancelled prefill left in the cache is only ever reused up to the tokens it shares with
the prompt that comes next (llama.cpp compares token by token)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from storyteller.errors import StorytellerError
from storyteller.generation import Narrator

log = logging.getLogger(__name__)


class Prefill:
    def __init__(self, narrator: Narrator | None, next_prefix: Callable[[], list[int]],
                 on_prefilled: Callable[[], None] = lambda: None):
        """next_prefix() gives the tokens to prefill: the next turn's stable prefix;
        on_prefilled() hears that they are all in the cache. Without a narrator (the
        prefill setting off), nothing is prefilled."""
        self._prefill = getattr(narrator, "prefill", None)
        self._next_prefix = next_prefix
        self._on_prefilled = on_prefilled
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.evaluated = 0  # tokens the last prefill evaluated
        self.tokens: list[int] = []  # the last prefill's target

    @property
    def enabled(self) -> bool:
        return self._prefill is not None

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
            tokens = self._next_prefix()
            if cancel.is_set():
                return
            self.tokens, self.evaluated = tokens, 0
            self.evaluated = self._prefill(tokens, cancel)
            if not cancel.is_set():
                self._on_prefilled()
        except StorytellerError as error:  # a failing memory index: the turn will say so
            log.warning("prefill skipped: %s", error)
        except Exception:  # a bug here must never take the game down
            log.exception("prefill failed")
