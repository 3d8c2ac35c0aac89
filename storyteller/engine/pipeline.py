"""One telling of a turn, before it is recorded: recall what the story remembers, build
the prompt that fits the context, and stream the narration through the loop guard."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storyteller.config import Settings
from storyteller.context.prompt import (
    Budget,
    BudgetShares,
    PromptMemory,
    PromptParts,
    PromptPlan,
    build_prompt,
)
from storyteller.context.summary import Summarizer
from storyteller.engine.guard import guarded_answer
from storyteller.engine.reply import ChunkCallback, TurnCancelled
from storyteller.generation import GenerationStats, Narrator, SamplingOptions
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World

if TYPE_CHECKING:
    from storyteller.memory.recall import Recall
    from storyteller.memory.story import StoryMemory

RECALL_RECENT_TURNS = 4  # names in this many last turns activate their lore entries


@dataclass
class Telling:
    """A narration as it was told, with what it was told from."""

    output: str
    plan: PromptPlan
    stats: GenerationStats
    seed: int
    timings: dict[str, float]
    recall: Recall | None = None
    attempts: int = 1
    notices: list[str] = field(default_factory=list)


class TurnPipeline:
    def __init__(self, narrator: Narrator, settings: Settings, world: World, system_text: str,
                 summarizer: Summarizer, memory: StoryMemory | None):
        self.narrator = narrator
        self.settings = settings  # replaced when the player changes them (tuning.py)
        self.world = world
        self.system_text = system_text
        self.summarizer = summarizer
        self.memory = memory
        self.floor_tokens = 0  # the last prompt's hard floors: they size the shares
        self._retries: dict[int, int] = {}  # per turn number: a retelling draws new seeds

    @property
    def budget(self) -> Budget:
        """From the settings in force: /settings may change max_tokens mid-game."""
        settings = self.settings
        return Budget(self.narrator.n_ctx, settings.max_tokens,
                      BudgetShares(settings.share_memories, settings.share_summary,
                                   settings.share_history),
                      memories_first=settings.prompt_layout == "memories-first")

    def summary_caps(self) -> tuple[int, int]:
        """The history's and the summary's token caps, sized with a typical input so that
        they do not move from turn to turn."""
        floors = self.floor_tokens + self.budget.input_allowance
        return self.budget.cap("history", floors), self.budget.cap("summary", floors)

    def tell(self, history: list[Turn], number: int, player_input: str,
             on_chunk: ChunkCallback | None, cancel: threading.Event,
             retelling: bool = False) -> Telling:
        """Narrate turn `number` after `history`. A retelling (retry, edit) draws new seeds
        and does not let the old telling's memories shape the new one."""
        if retelling:
            self._retries[number] = self._retries.get(number, 0) + 1
        timings = {"extract": 0.0}  # the notes are taken after the turn: see Game.settle

        started = time.perf_counter()
        recall = None
        if self.memory:
            recall = self.memory.recall(history[-RECALL_RECENT_TURNS:], player_input, number,
                                        hide_turn=number if retelling else None)
        timings["retrieve"] = _ms_since(started)

        started = time.perf_counter()
        plan = build_prompt(self.narrator, self.prompt_parts(history, player_input, recall),
                            self.budget)
        self.floor_tokens = sum(plan.rendered.section_tokens.get(name, 0)
                                for name in ("system", "pinned"))
        timings["budget"] = _ms_since(started)

        seeds: list[int] = []

        def attempt(options: SamplingOptions) -> tuple[str, GenerationStats]:
            output, stats, stream_timings = self._generate(plan, options, on_chunk, cancel)
            # The player waits for the first attempt's first token, and for every attempt;
            # tokens/s is the kept answer's.
            timings.setdefault("ttft", stream_timings["ttft"])
            timings["generate"] = timings.get("generate", 0.0) + stream_timings["generate"]
            timings["decode"] = stream_timings["generate"] - stream_timings["ttft"]
            seeds.append(options.seed)
            return output, stats

        previous = history[-1].output if history else ""
        output, stats, options = guarded_answer(attempt, self.sampling(), previous,
                                                lambda n: self._seed(number, n))
        notices = list(plan.notices) + (recall.notices if recall else [])
        return Telling(output, plan, stats, options.seed, timings, recall, len(seeds), notices)

    def prompt_parts(self, history: list[Turn], player_input: str,
                     recall: Recall | None = None) -> PromptParts:
        """What this turn's prompt may hold: the turns the summary does not cover yet,
        the summary, and from the story memory's recall, pinned facts and memories."""
        parts = PromptParts(system=self.system_text, opening=self.world.opening,
                            summary=self.summarizer.summaries.current.text,
                            history=self.summarizer.history(history), player_input=player_input)
        if recall:
            parts.pinned = [item.text for item in recall.pinned]
            parts.memories = [PromptMemory(item.entry.id, item.entry.kind, item.text, item.score)
                              for item in recall.memories]
        return parts

    def sampling(self) -> SamplingOptions:
        return SamplingOptions(**self.settings.model_dump(include=set(SamplingOptions.model_fields)
                                                          - {"seed"}))

    def _generate(self, plan: PromptPlan, options: SamplingOptions,
                  on_chunk: ChunkCallback | None,
                  cancel: threading.Event) -> tuple[str, GenerationStats, dict[str, float]]:
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


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
