"""The story memory's background writer: after a turn is saved, one thread indexes the
turn's story passages and runs the extractor, turn after turn, in order, while the
player reads and types. No turn waits for it (the previous turn is in the prompt
verbatim): note-taking runs only between turns (Foreground), and a turn that starts stops
it, to take those notes again once the turn is told. settle() waits, for headless runs,
tests and closing."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from storyteller.errors import StorytellerError
from storyteller.storage.transcript import Turn

log = logging.getLogger(__name__)


@dataclass(eq=False)  # a job is itself: Foreground keeps a set of them
class Job:
    turn: Turn
    index_events: bool  # False: the events are indexed already, only the notes are missing
    cancel: threading.Event = field(default_factory=threading.Event)  # the turn is taken back
    # stops the model call under way: set with cancel, or when a turn starts
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class NoteCounts:
    """How note-taking kept up, for the benchmarks."""

    noted: int = 0  # turns whose notes were taken
    stopped: int = 0  # note-takings stopped by a turn that started (each taken again later)


class Foreground:
    """Whether the narrator is telling a turn. Background model calls run only between
    turns: one under way when a turn starts is stopped at its next token, so the turn
    never waits for it, whether it shares the narrator's model and lock or only the CPU."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._telling = 0
        self._running: set[Job] = set()

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._lock:
            self._telling += 1
            self._idle.clear()
            for job in self._running:
                job.stop.set()
        try:
            yield
        finally:
            with self._lock:
                self._telling -= 1
                if not self._telling:
                    self._idle.set()

    @contextmanager
    def between_turns(self, job: Job) -> Iterator[None]:
        """Wait until no turn is being told (or the job is cancelled), then run the
        body with a fresh job.stop that the next turn to start sets."""
        while not self._idle.wait(0.05) and not job.cancel.is_set():
            pass
        with self._lock:
            job.stop = threading.Event()
            if self._telling or job.cancel.is_set():
                job.stop.set()
            self._running.add(job)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(job)


class MemoryWriter:
    """Runs write(job) for each job, in order, on one thread. write must check
    job.cancel between its steps; a job whose turn is taken back is cancelled."""

    def __init__(self, write: Callable[[Job], None]):
        self._write = write
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._current: Job | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.write_ms: dict[int, float] = {}  # per turn: its background memory writing
        self.foreground = Foreground()
        self.notes = NoteCounts()
        self.problems: list[str] = []  # from the background, shown with the next reply
        self._thread = threading.Thread(target=self._run, name="memory-writer", daemon=True)
        self._thread.start()

    def add(self, turn: Turn, index_events: bool = True) -> None:
        self._jobs.put(Job(turn, index_events))

    def cancel_from(self, number: int) -> None:
        """Turns from `number` on were taken back: stop the one being written (queued
        ones are skipped when their turn is no longer live)."""
        with self._lock:
            if self._current is not None and self._current.turn.number >= number:
                self._current.cancel.set()
                self._current.stop.set()

    def settle(self) -> None:
        """Wait until every job added so far is written."""
        self._jobs.join()

    def stop(self, finish: bool = True) -> None:
        """Stop the thread: after writing every job (finish), or cancelling them."""
        if not finish:
            self._stopping.set()
            self.cancel_from(0)
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._stopping.is_set():
                    continue
                with self._lock:
                    self._current = job
                self._timed(job)
            finally:
                with self._lock:
                    self._current = None
                self._jobs.task_done()

    def _timed(self, job: Job) -> None:
        started = time.perf_counter()
        number = job.turn.number
        try:
            self._write(job)
        except StorytellerError as error:  # the index or the journal failed: say so, go on
            log.warning("turn %d: memory not written: %s", number, error)
            self.problems.append(f"Memory: {error}")
        except Exception as error:  # a bug here must never take the game down
            log.exception("turn %d: memory writer failed", number)
            self.problems.append(f"Memory: turn {number} was not remembered ({error}).")
        self.write_ms[number] = (time.perf_counter() - started) * 1000
