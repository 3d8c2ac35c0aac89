"""`storyteller run`: play a script of actions without the terminal UI."""

from __future__ import annotations

import sys
from pathlib import Path

from storyteller.config import Settings
from storyteller.engine.session import open_game
from storyteller.engine.trace import append_trace
from storyteller.errors import SaveError, StorytellerError


def read_script(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SaveError(f"Cannot read script {path}: {error.strerror}.") from None
    return [line for line in text.splitlines() if line.strip()]


def run_script(settings: Settings, campaign_name: str, script: Path,
               trace_path: Path | None) -> int:
    """Narration goes to stdout; notices and command answers to stderr.
    Returns 1 if any turn failed (the others are still played and saved)."""
    lines = read_script(script)
    game = open_game(settings, campaign_name)
    for notice in game.campaign.notices + game.opening_notices:
        print(f"[{notice}]", file=sys.stderr)
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
        if reply.trace and trace_path:
            game.settle(reply)  # the turn's extraction time goes into its trace
            append_trace(trace_path, reply.trace)
        if reply.quit:
            break
    game.close()  # the last turn's memory is written before we exit
    return 1 if failures else 0


def _print_chunk(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()
