"""One turn of the game, headless: clean the input, handle commands, build the prompt,
stream the narration, record the turn. The TUI and `storyteller run` both drive this."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storyteller.campaign import Campaign, Turn
from storyteller.config import Settings
from storyteller.context.prompt import PromptParts, PromptPlan, build_prompt
from storyteller.context.world import World
from storyteller.engine.commands import run_command
from storyteller.engine.text import clean_player_input
from storyteller.engine.trace import TIMING_STAGES, TurnTrace
from storyteller.narrator.base import GenerationStats, Narrator, NarratorError, SamplingOptions

if TYPE_CHECKING:
    from storyteller.memory.retrieve import Recall
    from storyteller.memory.story import StoryMemory

EMPTY_ANSWER_RETRIES = 2  # a model that returns nothing gets this many more tries

class TurnCancelled(Exception):
    """The player cancelled the narration; nothing was recorded."""


@dataclass
class Reply:
    """What the game answers to one line of player input."""

    message: str = ""  # for the player: help text, a notice, an error hint
    turn: Turn | None = None  # the turn that was narrated and recorded
    trace: TurnTrace | None = None
    undone: Turn | None = None  # the turn taken back by /undo or /retry
    quit: bool = False
    notices: list[str] = field(default_factory=list)


ChunkCallback = Callable[[str], None]


class Game:
    def __init__(self, campaign: Campaign, narrator: Narrator, settings: Settings,
                 world: World, system_text: str, memory: StoryMemory | None = None):
        self.campaign = campaign
        self.memory = memory
        self.world = world
        self.narrator = narrator
        self.settings = settings
        self.system_text = system_text
        self._retries: dict[int, int] = {}  # per turn number: a retry must draw a new seed
        if settings.max_tokens >= narrator.n_ctx // 2:
            raise NarratorError(f"--max-tokens {settings.max_tokens} leaves no room for the "
                                f"story in a {narrator.n_ctx}-token context; use at most "
                                f"{narrator.n_ctx // 2 - 1} or raise --n-ctx.")

    def submit(self, raw_text: str, on_chunk: ChunkCallback | None = None,
               cancel: threading.Event | None = None) -> Reply:
        """Play one line: a command (starting with '/') or an action."""
        text, notice = clean_player_input(raw_text, self.settings.max_input_chars)
        if not text:
            return Reply(message="Type an action, or /help for the commands.")
        if text.startswith("/"):
            return run_command(self, text, on_chunk, cancel)
        reply = self.narrate(text, on_chunk, cancel)
        if notice:
            reply.notices.insert(0, notice)
        return reply

    def undo(self) -> Reply:
        undone = self.campaign.undo()
        if undone is None:
            return Reply(message="Nothing to undo yet.")
        if self.memory:
            self.memory.undo_turn(undone.number)
        return Reply(message=f"Turn {undone.number} taken back.", undone=undone)

    def retry(self, on_chunk: ChunkCallback | None = None,
              cancel: threading.Event | None = None) -> Reply:
        if not self.campaign.turns:
            return Reply(message="Nothing to retry yet: type an action first.")
        last = self.campaign.turns[-1]
        self._retries[last.number] = self._retries.get(last.number, 0) + 1
        # Narrate first, record after: a cancelled or failed retry keeps the old turn.
        reply = self.narrate(last.input, on_chunk, cancel, replacing=last)
        reply.undone = last
        return reply

    def narrate(self, player_input: str, on_chunk: ChunkCallback | None = None,
                cancel: threading.Event | None = None, replacing: Turn | None = None) -> Reply:
        """Narrate an action and record the turn. With `replacing`, that (last) turn is
        taken back only once the new narration is complete."""
        cancel = cancel or threading.Event()
        history = self.campaign.turns[:-1] if replacing else self.campaign.turns
        number = replacing.number if replacing else self.campaign.next_turn_number
        timings = {"extract": 0.0}  # extraction runs after the turn: see settle()

        started = time.perf_counter()
        recall = None
        if self.memory:
            recall = self.memory.recall(self._recent(history), player_input, number,
                                        hide_turn=replacing.number if replacing else None)
        timings["retrieve"] = _ms_since(started)

        started = time.perf_counter()
        plan = build_prompt(self.narrator, self.prompt_parts(history, player_input, recall),
                            self.settings.max_tokens)
        timings["budget"] = _ms_since(started)

        output, stats, seed = "", GenerationStats(), 0
        for attempt in range(EMPTY_ANSWER_RETRIES + 1):
            seed = self._seed(number, attempt)
            output, stats, stream_timings = self._generate(plan, seed, on_chunk, cancel)
            timings.update(stream_timings)
            if output:
                break
        else:
            raise NarratorError("The model returned nothing, three times; try /retry, "
                                "a larger --max-tokens, or another --model.")

        started = time.perf_counter()
        turn = Turn(number, plan.parts.player_input, output, model=self.narrator.model_id)
        if replacing:
            self.campaign.undo()
        self.campaign.append_turn(turn)
        timings["save"] = _ms_since(started)

        notices = list(plan.notices)
        if self.memory:
            if replacing:
                self.memory.undo_turn(replacing.number)
            self.memory.record_turn(turn)  # in the background
            notices += recall.notices + self.memory.take_problems()
        trace = self._trace(turn, plan, stats, timings, seed)
        trace.retrieved = recall.trace() if recall else []
        return Reply(turn=turn, trace=trace, notices=notices)

    def settle(self, reply: Reply) -> None:
        """Wait for the memory writes of the reply's turn and put their time (events
        indexed and facts extracted, in the background) in its trace's `extract`."""
        if self.memory and reply.turn and reply.trace:
            self.memory.wait()
            reply.trace.timings_ms["extract"] = round(self.memory.write_ms(reply.turn.number), 3)

    def close(self, finish: bool = True) -> None:
        """Stop the memory: finish (or, with finish=False, cancel) its background work."""
        if self.memory:
            self.memory.close(finish)

    def _recent(self, history: list[Turn]) -> list[Turn]:
        return history[-self.settings.history_turns:] if self.settings.history_turns else []

    def prompt_parts(self, history: list[Turn], player_input: str,
                     recall: Recall | None = None) -> PromptParts:
        """What this turn's prompt may hold: pinned facts and retrieved memories come
        from the story memory's recall; the summary seam is still empty."""
        parts = PromptParts(system=self.system_text, opening=self.world.opening,
                            history=self._recent(history), player_input=player_input)
        if recall:
            parts.pinned = [item.text for item in recall.pinned]
            parts.memories = [item.to_prompt() for item in recall.memories]
        return parts

    def _generate(self, plan: PromptPlan, seed: int, on_chunk: ChunkCallback | None,
                  cancel: threading.Event) -> tuple[str, GenerationStats, dict[str, float]]:
        options = SamplingOptions(
            temperature=self.settings.temperature, top_p=self.settings.top_p,
            top_k=self.settings.top_k, repeat_penalty=self.settings.repeat_penalty,
            max_tokens=self.settings.max_tokens, seed=seed,
        )
        stats = GenerationStats()
        chunks: list[str] = []
        started = time.perf_counter()
        ttft = None
        for chunk in self.narrator.stream(plan.rendered, options, cancel, stats):
            if ttft is None:
                ttft = _ms_since(started)
            chunks.append(chunk)
            if on_chunk:
                on_chunk(chunk)
        if cancel.is_set():
            raise TurnCancelled()
        generate = _ms_since(started)
        return "".join(chunks).strip(), stats, {"ttft": ttft or generate, "generate": generate}

    def _seed(self, turn_number: int, attempt: int) -> int:
        if self.settings.seed is None:
            return random.randrange(2**31)
        draw = attempt + 10 * self._retries.get(turn_number, 0)
        return (self.settings.seed * 1_000_003 + turn_number * 101 + draw) % 2**31

    def _trace(self, turn: Turn, plan: PromptPlan, stats: GenerationStats,
               timings: dict[str, float], seed: int) -> TurnTrace:
        return TurnTrace(
            turn=turn.number, input=turn.input, output=turn.output,
            prompt=plan.rendered.text, prompt_tokens=len(plan.rendered),
            completion_tokens=stats.completion_tokens, n_ctx=self.narrator.n_ctx,
            max_tokens=self.settings.max_tokens,
            sections=[section.to_json() for section in plan.sections],
            timings_ms={stage: round(timings.get(stage, 0.0), 3) for stage in TIMING_STAGES},
            model=self.narrator.model_id, seed=seed,
        )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
