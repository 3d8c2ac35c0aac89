"""The per-turn trace: what the model was given and how long each stage took.
Written one JSON object per line by `storyteller run --trace FILE`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from storyteller.storage.durable import append_jsonl

# ttft: from Enter (recall and budgeting included) to the first attempt's first token;
# generate: all attempts (a retried answer is generated again); decode: the kept answer
# from its first token to its last.
TIMING_STAGES = ("retrieve", "budget", "ttft", "generate", "decode", "extract", "save")


@dataclass
class TurnTrace:
    turn: int
    input: str
    output: str
    prompt: str
    prompt_tokens: int
    completion_tokens: int
    n_ctx: int
    max_tokens: int
    sections: list[dict] = field(default_factory=list)
    retrieved: list[dict] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_STAGES, 0.0))
    model: str = ""
    seed: int = 0
    autosave: dict = field(default_factory=dict)  # storage.campaign.SaveState after this turn
    attempts: int = 1  # answers generated; more than one when the loop guard retried
    scaffold_cut: int = 0  # characters of prompt scaffolding cut from the narration
    # Prompt tokens evaluated after Enter (the first attempt's): those not already in
    # the narrator's cache. The rest of prompt_tokens were reused.
    evaluated_tokens: int = 0

    @property
    def reused_tokens(self) -> int:
        return self.prompt_tokens - self.evaluated_tokens

    @property
    def ttft_seconds(self) -> float:
        """From Enter to the first token of the kept answer."""
        return self.timings_ms["ttft"] / 1000

    @property
    def tokens_per_second(self) -> float:
        """The kept answer's decoding speed after its first token (prompt evaluation
        excluded)."""
        seconds = self.timings_ms["decode"] / 1000
        if seconds <= 0 or self.completion_tokens < 2:
            return 0.0
        return (self.completion_tokens - 1) / seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def append_trace(path: Path, trace: TurnTrace) -> None:
    append_jsonl(path, asdict(trace))
