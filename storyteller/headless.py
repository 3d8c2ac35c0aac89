"""`storyteller run`: play a script of actions without the terminal UI."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from storyteller.config import Settings
from storyteller.engine.game import Game
from storyteller.engine.reply import Reply
from storyteller.engine.session import open_game
from storyteller.engine.trace import append_trace
from storyteller.errors import SaveError, StorytellerError


class ThinkTimeError(StorytellerError):
    """--think-time is negative."""


def read_script(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SaveError(f"Cannot read script {path}: {error.strerror}.") from None
    return [line for line in text.splitlines() if line.strip()]


def run_script(settings: Settings, campaign_name: str, script: Path,
               trace_path: Path | None, think_time: float = 0.0) -> int:
    """Narration goes to stdout; notices and command answers to stderr. After each line
    the player reads for `think_time` seconds; the next line is played without waiting
    for the background work, as a player would. Returns 1 if any turn failed (the
    others are still played and saved)."""
    if think_time < 0:
        raise ThinkTimeError(f"--think-time must be 0 or more seconds, not {think_time:g}.")
    lines = read_script(script)
    game = open_game(settings, campaign_name)
    for notice in game.campaign.notices + game.opening_notices:
        print(f"[{notice}]", file=sys.stderr)
    traces = PendingTraces(game, trace_path)
    failures = 0
    for line in lines:
        try:
            reply = game.submit(line, on_chunk=_print_chunk)
        except StorytellerError as error:
            print(f"storyteller: turn failed: {error}", file=sys.stderr)
            failures += 1
            continue
        for notice in reply.notices:
            print(f"[{notice}]", file=sys.stderr)
        if reply.message:
            print(reply.message, file=sys.stderr)
        if reply.turn:
            print("\n", flush=True)
        traces.add(reply)
        if reply.quit:
            break
        time.sleep(think_time)
        traces.write_ready()
    game.close()  # the last turn's memory is written before we exit
    traces.write_ready()
    return 1 if failures else 0


class PendingTraces:
    """Trace lines in turn order, each written once its own turn's figures are known
    (its memory writing timed), never by waiting for all the background work."""

    def __init__(self, game: Game, path: Path | None):
        self.game = game
        self.path = path
        self.replies: list[Reply] = []

    def add(self, reply: Reply) -> None:
        if reply.trace and self.path:
            self.replies.append(reply)
        self.write_ready()

    def write_ready(self) -> None:
        while self.replies and self.game.turn_settled(self.replies[0]):
            reply = self.replies.pop(0)
            self.game.fill_extract(reply)
            append_trace(self.path, reply.trace)


def _print_chunk(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()
