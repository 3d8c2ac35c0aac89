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

from dataclasses import asdict
from pathlib import Path

from storyteller.engine.reply import Reply
from storyteller.engine.trace import TurnTrace
from storyteller.storage.durable import append_jsonl
from storyteller.storage.names import now_iso

PREVIEW_CHARS = 120


class ContentLog:
    def __init__(self, path: Path, level: int):
        self.path = path
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
        try:
            self.path.parent.mkdir(exist_ok=True)
            for record in records:
                append_jsonl(self.path, {"at": stamp, **record})
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
