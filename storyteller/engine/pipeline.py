"""One telling of a turn, before it is recorded: recall what the story remembers, build
the prompt that fits the context, and stream the narration through the loop guard."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storyteller.config import Settings
from storyteller.context.prompt import (
    RECENT_TURNS,
    Budget,
    BudgetShares,
    PromptParts,
    PromptPlan,
    build_prompt,
)
from storyteller.context.scaffold import ScaffoldFilter
from storyteller.context.summary import Summarizer, Summary, SummaryLog, Watermarks
from storyteller.engine.block import RecalledBlock, prompt_memory
from storyteller.engine.guard import guarded_answer
from storyteller.engine.reply import ChunkCallback, TurnCancelled
from storyteller.generation import GenerationStats, Narrator, SamplingOptions
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World

if TYPE_CHECKING:
    from storyteller.memory.recall import Recall
    from storyteller.memory.story import StoryMemory
    from storyteller.storage.campaign import Campaign


@dataclass
class Telling:
    """A narration as it was told, with what it was told from."""

    output: str
    plan: PromptPlan
    stats: GenerationStats
    seed: int
    timings: dict[str, float]
    retrieved: list[dict] = field(default_factory=list)  # what memory put in the prompt
    attempts: int = 1
    notices: list[str] = field(default_factory=list)
    scaffold_cut: int = 0  # characters of the prompt's scaffolding cut from the narration
    evaluated_tokens: int = 0  # the first attempt's prompt tokens not found in the cache


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
        self.block = RecalledBlock()
        self.scaffold_cut = 0  # characters of scaffolding cut from the last answer
        self._retries: dict[int, int] = {}  # per turn number: a retelling draws new seeds
        self._planning = threading.Lock()  # a turn and the prefill plan one at a time
        # With the prefill (Game turns it on), a new summary, or a new scene's recalled
        # block, reaches a turn's prompt only once a prefill evaluated the prefix it
        # changes (adopt()): until then turns keep the layout in use.
        self.gated = False
        self._summary_in_use: Summary | None = None
        self._candidate: tuple[Summary, RecalledBlock] | None = None  # being prefilled
        # Clear from Enter to a turn's first word: the summary being written holds its
        # next token meanwhile (it would take half the cores the prompt is read with).
        self.no_turn_waiting = threading.Event()
        self.no_turn_waiting.set()

    @property
    def budget(self) -> Budget:
        """From the settings in force: /settings may change max_tokens mid-game."""
        settings = self.settings
        return Budget(self.narrator.n_ctx, settings.max_tokens,
                      BudgetShares(settings.share_summary, settings.share_recalled,
                                   settings.share_history))

    def summary_caps(self) -> tuple[int, int]:
        """The history's and the summary's token caps, sized with a typical input so that
        they do not move from turn to turn."""
        floors = self.floor_tokens + self.budget.input_allowance
        return self.budget.cap("history", floors), self.budget.cap("summary", floors)

    def plan(self, history: list[Turn], number: int, player_input: str,
             retelling: bool = False) -> tuple[PromptPlan, Recall | None, dict[str, float]]:
        """The prompt turn `number` would be told from, and what recall gave it: the very
        code path a turn uses (`storyteller prompt` shows it without telling)."""
        with self._planning:
            return self._plan(history, number, player_input, retelling)

    def stable_prefixes(self, history: list[Turn], number: int,
                        stand_in: str) -> tuple[list[int], list[int] | None]:
        """The tokens turn `number`'s prompt will most likely begin with, before its own
        memories and input, planned with `stand_in` for the action it does not know yet
        (the last action: its length decides, with its memories, how much history fits):
        as turns are laid out now, and, if it differs, with the newest summary and the
        scene's recalled block (the candidate layout, which adopt() puts in use)."""
        with self._planning:
            current, _, _ = self._plan(history, number, stand_in, False)
            candidate = (self.summarizer.summaries.current, copy.copy(self.block))
            planned, _, _ = self._plan(history, number, stand_in, False, candidate)
            self._candidate = candidate
        if planned.stable_tokens() == current.stable_tokens():
            return current.stable_tokens(), None
        return current.stable_tokens(), planned.stable_tokens()

    def adopt(self, cached: Callable[[], bool]) -> bool:
        """Put the candidate layout in use if cached() says the narrator's cache now
        holds its prefix: under the planning lock, so no turn is planned in between."""
        with self._planning:
            if not cached() or self._candidate is None:
                return False
            self._summary_in_use, self.block = self._candidate
            self._candidate = None
            return True

    def layout_summary(self) -> Summary:
        """The summary a turn's prompt holds: the newest, unless the prefill has not read
        it yet (then the one in use, while the log still has it: an undo may have
        dropped it)."""
        newest = self.summarizer.summaries.current
        in_use = self._summary_in_use
        still_held = in_use == Summary() or in_use in self.summarizer.summaries.history
        return in_use if self.gated and in_use is not None and still_held else newest

    def _plan(self, history: list[Turn], number: int, player_input: str, retelling: bool,
              candidate: tuple[Summary, RecalledBlock] | None = None,
              ) -> tuple[PromptPlan, Recall | None, dict[str, float]]:
        if candidate is None:
            summary, block = self.layout_summary(), self.block
            self._summary_in_use = summary
        else:
            summary, block = candidate
        planned = self._plan_with(history, number, player_input, retelling, summary, block,
                                  follow_scene=candidate is not None or not self.gated)
        newest = self.summarizer.summaries.current
        if candidate is None and summary != newest and dropped(planned[0], "history"):
            # The layout in use no longer fits: its history's front moves, so everything
            # after the summary is read again anyway; the newest summary goes in now.
            self._summary_in_use = newest
            plan, recall, timings = self._plan_with(history, number, player_input, retelling,
                                                    newest, block, follow_scene=False)
            planned = plan, recall, {stage: ms + planned[2][stage] for stage, ms in timings.items()}
        return planned

    def _plan_with(self, history: list[Turn], number: int, player_input: str,
                   retelling: bool, summary: Summary, block: RecalledBlock, follow_scene: bool,
                   ) -> tuple[PromptPlan, Recall | None, dict[str, float]]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        shown = self.summarizer.history(history, summary)
        hide = number if retelling else None
        recall = None
        if self.memory:
            # with the prefill, a new scene's block waits for adopt() (only one that no
            # longer holds, a turn taken back, is rebuilt at once)
            block.refresh(self.memory, history, shown, number, hide, self.world.opening,
                          follow_scene)
            recall = self.memory.recall(shown[-RECENT_TURNS:], player_input, number,
                                        hide_turn=hide,
                                        scene=self._scene_text(shown, summary, block))
        timings["retrieve"] = _ms_since(started)
        started = time.perf_counter()
        plan = self._build(shown, player_input, recall, summary, block)
        self.floor_tokens = sum(plan.rendered.section_tokens.get(name, 0)
                                for name in ("system", "pinned"))
        timings["budget"] = _ms_since(started)
        return plan, recall, timings

    def _scene_text(self, shown: list[Turn], summary: Summary, block: RecalledBlock) -> str:
        """What the prompt holds besides this turn's memories and pinned facts."""
        return "\n".join([self.system_text, self.world.opening, summary.text,
                          *(memory.line for memory in block.memories()),
                          *(f"{turn.input}\n{turn.output}" for turn in shown)])

    def tell(self, history: list[Turn], number: int, player_input: str,
             on_chunk: ChunkCallback | None, cancel: threading.Event,
             retelling: bool = False) -> Telling:
        """Narrate turn `number` after `history`. A retelling (retry, edit) draws new seeds
        and does not let the old telling's memories shape the new one."""
        entered = time.perf_counter()  # the player pressed Enter
        if retelling:
            self._retries[number] = self._retries.get(number, 0) + 1
        self.summarizer.hold()  # its read-ahead waits for the next turn recorded
        self.no_turn_waiting.clear()
        try:
            return self._tell(history, number, player_input, on_chunk, cancel, retelling,
                              entered)
        finally:
            self.no_turn_waiting.set()

    def _tell(self, history: list[Turn], number: int, player_input: str,
              on_chunk: ChunkCallback | None, cancel: threading.Event, retelling: bool,
              entered: float) -> Telling:
        plan, recall, timings = self.plan(history, number, player_input, retelling)
        timings["extract"] = 0.0  # the notes are taken after the turn: see Game.settle
        seeds: list[int] = []
        evaluated: list[int] = []

        def attempt(options: SamplingOptions) -> tuple[str, GenerationStats]:
            before = _ms_since(entered)
            output, stats, stream_timings = self._generate(plan, options, on_chunk, cancel)
            # The player waits from Enter (recall and budgeting too) for the first
            # attempt's first token, and for every attempt; tokens/s is the kept answer's.
            timings.setdefault("ttft", before + stream_timings["ttft"])
            evaluated.append(len(plan.rendered) if stats.evaluated_tokens is None
                             else stats.evaluated_tokens)
            timings["generate"] = timings.get("generate", 0.0) + stream_timings["generate"]
            timings["decode"] = stream_timings["decode"]
            seeds.append(options.seed)
            return output, stats

        previous = history[-1].output if history else ""
        sampling = self.sampling().model_copy(update={"avoid_copying": previous})
        output, stats, options = guarded_answer(attempt, sampling, previous,
                                                lambda n: self._seed(number, n))
        notices = list(plan.notices) + (recall.notices if recall else [])
        return Telling(output, plan, stats, options.seed, timings, self.retrieved(plan, recall),
                       len(seeds), notices, scaffold_cut=self.scaffold_cut,
                       evaluated_tokens=evaluated[0])

    def retrieved(self, plan: PromptPlan, recall: Recall | None) -> list[dict]:
        """What the story memory put in this prompt, section by section, for the trace."""
        if recall is None:
            return []
        parts = plan.parts
        sections = {"pinned": (recall.pinned, parts.pinned),
                    "recalled": (self.block.items, parts.recalled),
                    "memories": (recall.memories, parts.memories)}
        traced = []
        for section, (items, fitted) in sections.items():
            shown = {memory.id: memory for memory in fitted}  # as fitted: maybe cut short
            traced += [{**item.to_trace(), "text": shown[item.entry.id].said,
                        "section": section} for item in items if item.entry.id in shown]
        return traced

    def _build(self, shown: list[Turn], player_input: str, recall: Recall | None,
               summary: Summary, block: RecalledBlock) -> PromptPlan:
        """Fit the prompt; a memory the fitted prompt shows elsewhere (a turn of the history,
        an item of the recalled block) is left out and the prompt fitted again, and one the
        block holds but had no room to show stays (the room goes to what is not shown)."""
        parts = self.prompt_parts(shown, player_input, summary, recall, block)
        candidates = parts.memories
        parts.memories = [m for m in candidates if m.id not in block.ids]
        plan = build_prompt(self.narrator, parts, self.budget)
        elsewhere = ({f"turn-{turn.number}" for turn in plan.parts.history}
                     | {memory.id for memory in plan.parts.recalled})
        kept = [m for m in candidates if m.id not in elsewhere]
        if [m.id for m in kept] != [m.id for m in parts.memories]:
            parts.memories = kept
            plan = build_prompt(self.narrator, parts, self.budget)
        return plan

    def prompt_parts(self, shown: list[Turn], player_input: str, summary: Summary,
                     recall: Recall | None = None,
                     block: RecalledBlock | None = None) -> PromptParts:
        """What this turn's prompt may hold: the turns the summary does not cover yet,
        the summary, the recalled block, and from the story memory's recall, pinned facts
        and this input's memories (an ordinary action: only those it needs)."""
        parts = PromptParts(system=self.system_text, opening=self.world.opening,
                            summary=summary.text,
                            recalled=(block or self.block).memories(), history=shown,
                            player_input=player_input)
        if recall:
            parts.pinned = [prompt_memory(item) for item in recall.pinned]
            parts.asks_about_the_past = recall.asks_about_the_past
            parts.memories = [prompt_memory(item) for item in recall.memories
                              if item.needed or recall.asks_about_the_past]
        return parts

    def sampling(self) -> SamplingOptions:
        return SamplingOptions(**self.settings.model_dump(include=set(SamplingOptions.model_fields)
                                                          - {"seed"}))

    def _generate(self, plan: PromptPlan, options: SamplingOptions,
                  on_chunk: ChunkCallback | None,
                  cancel: threading.Event) -> tuple[str, GenerationStats, dict[str, float]]:
        """One answer, streamed to on_chunk with the prompt's scaffolding cut (what is
        shown is what is saved)."""
        stats = GenerationStats()
        scaffold = ScaffoldFilter()
        chunks: list[str] = []

        def show(text: str) -> None:
            if text:
                chunks.append(text)
                if on_chunk:
                    on_chunk(text)

        started = time.perf_counter()
        ttft = last = None
        for chunk in self.narrator.stream(plan.rendered, options, cancel, stats):
            last = _ms_since(started)
            if ttft is None:
                ttft = last
                self.no_turn_waiting.set()
            show(scaffold.feed(chunk))
        show(scaffold.finish())
        if cancel.is_set():
            raise TurnCancelled()
        generate = _ms_since(started)
        self.scaffold_cut = scaffold.cut
        # decode: first to last token (the step that finds the end of text shows none)
        return "".join(chunks).strip(), stats, {"ttft": ttft or generate, "generate": generate,
                                                "decode": (last or generate) - (ttft or generate)}

    def _seed(self, turn_number: int, attempt: int) -> int:
        if self.settings.seed is None:
            return random.randrange(2**31)
        draw = attempt + 10 * self._retries.get(turn_number, 0)
        return (self.settings.seed * 1_000_003 + turn_number * 101 + draw) % 2**31


def turn_pipeline(campaign: Campaign, narrator: Narrator, background: Narrator,
                  settings: Settings, world: World, system_text: str,
                  memory: StoryMemory | None) -> TurnPipeline:
    """The campaign's turn pipeline and its summarizer (`background` writes the
    summaries): what a game tells its turns with, and `storyteller prompt` shows."""
    pipeline: TurnPipeline | None = None
    own_context = background is not narrator  # else pausing it would hold the turn's lock

    def pause() -> None:
        if own_context:
            pipeline.no_turn_waiting.wait(PAUSE_LIMIT_SECONDS)

    summarizer = Summarizer(
        background, settings.prompts_dir, SummaryLog(campaign.path),
        turns=lambda: campaign.turns, caps=lambda: pipeline.summary_caps(),
        watermarks=Watermarks(settings.summary_high_watermark, settings.summary_low_watermark),
        seed=settings.seed or 0, warm=own_context,
        in_use=lambda: pipeline.layout_summary() == summarizer.summaries.current,
        pause=pause)
    pipeline = TurnPipeline(narrator, settings, world, system_text, summarizer, memory)
    return pipeline


PAUSE_LIMIT_SECONDS = 10  # a summary never waits longer for a turn's first word


def dropped(plan: PromptPlan, section: str) -> int:
    """How many items of `section` the plan left out to fit."""
    return next((s.dropped for s in plan.sections if s.name == section), 0)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
