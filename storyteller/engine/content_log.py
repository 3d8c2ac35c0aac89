"""The content log: what happened in each turn, at the level of detail the player chose,
in saves/<campaign>/logs/content.jsonl (one JSON object a line).

    0  off
    1  one summary per turn: the action, the start of the narration, tokens, time
    2  + the key stages: prompt sections and what was dropped or retrieved, generation,
       saving; commands and failed turns
    3  + the full turn trace: the whole prompt as sent and the whole output

The log is a record, not the story: failing to write it never fails a turn (the
problem is reported once). `/export log` copies it to exports/.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from storyteller.campaign import LOGS_DIR, now_iso

if TYPE_CHECKING:
    from storyteller.engine.game import Reply
    from storyteller.engine.trace import TurnTrace

LOG_FILE = "content.jsonl"
PREVIEW_CHARS = 120


def log_path(campaign_dir: Path) -> Path:
    return campaign_dir / LOGS_DIR / LOG_FILE


class ContentLog:
    def __init__(self, campaign_dir: Path, level: int):
        self.path = log_path(campaign_dir)
        self.level = level
        self.problem = ""  # set once when a write fails, then cleared after it is reported
        self._reported = False

    def record_reply(self, text: str, reply: Reply) -> None:
        if reply.trace is not None:
            self._write(turn_records(reply.trace, self.level))
        elif self.level >= 2 and text.startswith("/"):
            self._write([{"event": "command", "command": text, "message": reply.message,
                          "undone": reply.undone.number if reply.undone else None}])

    def record_failure(self, text: str, error: str) -> None:
        if self.level >= 2:
            self._write([{"event": "failed", "input": text, "error": error}])

    def _write(self, records: list[dict]) -> None:
        self.problem = ""
        if self.level <= 0 or not records:
            return
        stamp = now_iso()
        lines = "".join(json.dumps({"at": stamp, **record}, ensure_ascii=False) + "\n"
                        for record in records)
        try:
            self.path.parent.mkdir(exist_ok=True)
            with open(self.path, "a", encoding="utf-8", errors="backslashreplace") as file:
                file.write(lines)
        except OSError as error:
            if not self._reported:  # say it once, not on every turn
                self.problem = f"The content log could not be written ({error.strerror}); " \
                               "the story itself is saved."
                self._reported = True


def turn_records(trace: TurnTrace, level: int) -> list[dict]:
    """The records one turn leaves in a log of this level."""
    if level <= 0:
        return []
    records = [{
        "event": "turn", "turn": trace.turn, "input": trace.input,
        "output_start": trace.output[:PREVIEW_CHARS], "output_chars": len(trace.output),
        "prompt_tokens": trace.prompt_tokens, "completion_tokens": trace.completion_tokens,
        "ms": round(sum(trace.timings_ms.values()), 1),
    }]
    if level >= 2:
        records += [
            {"event": "stage", "stage": "prompt", "turn": trace.turn,
             "sections": trace.sections, "retrieved": trace.retrieved, "n_ctx": trace.n_ctx},
            {"event": "stage", "stage": "generate", "turn": trace.turn, "model": trace.model,
             "seed": trace.seed, "completion_tokens": trace.completion_tokens,
             "attempts": trace.attempts, "ttft_ms": trace.timings_ms["ttft"],
             "generate_ms": trace.timings_ms["generate"]},
            {"event": "stage", "stage": "save", "turn": trace.turn,
             "save_ms": trace.timings_ms["save"], "autosave": trace.autosave},
        ]
    if level >= 3:
        records.append({"event": "trace", **asdict(trace)})
    return records


def read_log(campaign_dir: Path) -> list[dict]:
    """The log's complete records (a line torn by a crash is skipped)."""
    path = log_path(campaign_dir)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records

