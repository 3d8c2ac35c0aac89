"""One turn of the game, headless: clean the input, handle commands, build the prompt,
stream the narration, record the turn. The TUI and `storyteller run` both drive this."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storyteller.campaign import Campaign, CampaignError, SaveState, Turn
from storyteller.config import Settings
from storyteller.context.prompt import (
    Budget,
    BudgetShares,
    PromptParts,
    PromptPlan,
    build_prompt,
)
from storyteller.context.summary import Summarizer, SummaryLog, Watermarks
from storyteller.context.world import World
from storyteller.engine.commands import run_command
from storyteller.engine.content_log import ContentLog
from storyteller.engine.guard import guarded_answer
from storyteller.engine.text import clean_player_input
from storyteller.engine.trace import TIMING_STAGES, TurnTrace
from storyteller.narrator.base import GenerationStats, Narrator, NarratorError, SamplingOptions

if TYPE_CHECKING:
    from storyteller.memory.retrieve import Recall
    from storyteller.memory.story import StoryMemory

RECALL_RECENT_TURNS = 4  # names in this many last turns activate their lore entries

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
    plan: PromptPlan | None = None  # the prompt as sent, section by section (inspector)
    autosave: SaveState | None = None  # what is on disk after this line was played
    saved_checkpoint: str = ""  # a checkpoint written by /save, or kept before /load
    loaded_checkpoint: str = ""  # the checkpoint /load restored


ChunkCallback = Callable[[str], None]


class Game:
    def __init__(self, campaign: Campaign, narrator: Narrator, settings: Settings,
                 world: World, system_text: str, memory: StoryMemory | None = None,
                 background: Narrator | None = None, owns_models: bool = False):
        """`background` does the work behind the player's back (summaries, and the
        memory's extraction): a second context on the same model keeps the narrator's
        KV cache for the story."""
        self.campaign = campaign
        self.memory = memory
        self.owns_models = owns_models  # loaded by open_game: close() frees them
        self.world = world
        self.narrator = narrator
        self.settings = settings
        self.system_text = system_text
        self.summarizer = Summarizer(
            background or narrator, settings.prompts_dir, SummaryLog(campaign.path),
            Watermarks(settings.summary_high_watermark, settings.summary_low_watermark),
            seed=settings.seed or 0)
        self._retries: dict[int, int] = {}  # per turn number: a retry must draw a new seed
        self.content_log = ContentLog(campaign.path, settings.content_log_level)
        if settings.max_tokens >= narrator.n_ctx // 2:
            raise NarratorError(f"--max-tokens {settings.max_tokens} leaves no room for the "
                                f"story in a {narrator.n_ctx}-token context; use at most "
                                f"{narrator.n_ctx // 2 - 1} or raise --n-ctx.")

    @property
    def budget(self) -> Budget:
        """From the settings in force: /settings may change max_tokens mid-game."""
        settings = self.settings
        return Budget(self.narrator.n_ctx, settings.max_tokens,
                      BudgetShares(settings.share_memories, settings.share_summary,
                                   settings.share_history),
                      memories_first=settings.prompt_layout == "memories-first")

    def close(self, finish: bool = True) -> None:
        """Finish (or, with finish=False, cancel) the memory's background work, wait for
        the summary, then free the models this game loaded."""
        if self.memory:
            self.memory.close(finish)
        self.summarizer.wait()
        if self.owns_models:
            self.narrator.close()
            if self.summarizer.narrator is not self.narrator:
                self.summarizer.narrator.close()

    def submit(self, raw_text: str, on_chunk: ChunkCallback | None = None,
               cancel: threading.Event | None = None) -> Reply:
        """Play one line: a command (starting with '/') or an action."""
        text, notice = clean_player_input(raw_text, self.settings.max_input_chars)
        try:
            if not text:
                reply = Reply(message="Type an action, or /help for the commands.")
            elif text.startswith("/"):
                reply = run_command(self, text, on_chunk, cancel)
            else:
                reply = self._narrate_logged(text, on_chunk, cancel)
                if notice:
                    reply.notices.insert(0, notice)
        except OSError as error:  # a derived file (summaries, memory) on a failing disk
            raise CampaignError(
                f"Cannot write {error.filename or self.campaign.path}: {error.strerror}; free "
                "some disk space or make the saves directory writable, then try again "
                "(the transcript holds every completed turn).") from None
        reply.autosave = self.campaign.save_state
        if reply.autosave.problem:
            reply.notices.append(reply.autosave.describe())
        self.content_log.record_reply(text, reply)
        if self.content_log.problem:
            reply.notices.append(self.content_log.problem)
        return reply

    def _narrate_logged(self, text: str, on_chunk: ChunkCallback | None,
                        cancel: threading.Event | None) -> Reply:
        try:
            return self.narrate(text, on_chunk, cancel)
        except (NarratorError, CampaignError) as error:
            self.content_log.record_failure(text, str(error))
            raise

    def undo(self) -> Reply:
        self.summarizer.wait()
        undone = self.campaign.undo()
        if undone is None:
            return Reply(message="Nothing to undo yet.")
        self.summarizer.summaries.invalidate_from(undone.number)
        if self.memory:
            self.memory.undo_turn(undone.number)
        return Reply(message=f"Turn {undone.number} taken back.", undone=undone)

    def save_checkpoint(self, name: str) -> Reply:
        path = self.campaign.save_checkpoint(name)
        return Reply(message=f"Checkpoint {path.stem!r} saved at turn {len(self.campaign.turns)}; "
                             f"/load {path.stem} comes back to it.", saved_checkpoint=path.stem)

    def load_checkpoint(self, name: str) -> Reply:
        """Go back to a checkpoint. The story as it was is kept as a new checkpoint first."""
        self.summarizer.wait()
        before = list(self.campaign.turns)
        kept = self.campaign.load_checkpoint(name)
        shared = _shared_turns(before, self.campaign.turns)
        # Summaries and memories of turns the checkpoint does not share no longer hold.
        self.summarizer.summaries.invalidate_from(shared + 1)
        if self.memory:
            for turn in reversed(before[shared:]):
                self.memory.undo_turn(turn.number)
            for turn in self.campaign.turns[shared:]:
                self.memory.record_turn(turn)
        loaded = self.campaign.checkpoint_path(name).stem
        return Reply(message=f"Loaded checkpoint {loaded!r}: {len(self.campaign.turns)} turns. "
                             f"The story before loading is kept as {kept!r} (/load {kept}).",
                     saved_checkpoint=kept, loaded_checkpoint=loaded)

    def list_checkpoints(self) -> Reply:
        found = self.campaign.checkpoints()
        if not found:
            return Reply(message="No checkpoints yet: /save NAME makes one. (Every turn is "
                                 "saved anyway.)")
        lines = ["Checkpoints (/load NAME):"]
        lines += [f"  {c.name}  {c.turns} turns  {c.created}" for c in found]
        return Reply(message="\n".join(lines))

    def retry(self, on_chunk: ChunkCallback | None = None,
              cancel: threading.Event | None = None) -> Reply:
        if not self.campaign.turns:
            return Reply(message="Nothing to retry yet: type an action first.")
        return self._retell(self.campaign.turns[-1].input, on_chunk, cancel)

    def edit(self, new_input: str, on_chunk: ChunkCallback | None = None,
             cancel: threading.Event | None = None) -> Reply:
        """Change the last action and tell that turn again."""
        if not self.campaign.turns:
            return Reply(message="Nothing to edit yet: type an action first.")
        return self._retell(new_input, on_chunk, cancel)

    def _retell(self, player_input: str, on_chunk: ChunkCallback | None,
                cancel: threading.Event | None) -> Reply:
        last = self.campaign.turns[-1]
        self._retries[last.number] = self._retries.get(last.number, 0) + 1
        # Narrate first, record after: a cancelled or failed retelling keeps the old turn.
        reply = self.narrate(player_input, on_chunk, cancel, replacing=last)
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
        self._wait_for_background(cancel)
        timings["wait"] = _ms_since(started)

        started = time.perf_counter()
        recall = None
        if self.memory:
            recall = self.memory.recall(history[-RECALL_RECENT_TURNS:], player_input, number,
                                        hide_turn=replacing.number if replacing else None)
        timings["retrieve"] = _ms_since(started)

        started = time.perf_counter()
        plan = build_prompt(self.narrator, self.prompt_parts(history, player_input, recall),
                            self.budget)
        timings["budget"] = _ms_since(started)

        previous = history[-1].output if history else ""

        def attempt(options: SamplingOptions) -> tuple[str, GenerationStats]:
            output, stats, stream_timings = self._generate(plan, options, on_chunk, cancel)
            # The player waits for the first attempt's first token, and for every attempt;
            # tokens/s is the kept answer's.
            timings.setdefault("ttft", stream_timings["ttft"])
            timings["generate"] = timings.get("generate", 0.0) + stream_timings["generate"]
            timings["decode"] = stream_timings["generate"] - stream_timings["ttft"]
            attempts.append(options.seed)
            return output, stats

        attempts: list[int] = []

        output, stats, options = guarded_answer(attempt, self._sampling(), previous,
                                                lambda n: self._seed(number, n))

        started = time.perf_counter()
        turn = Turn(number, plan.parts.player_input, output, model=self.narrator.model_id)
        if replacing:
            self.campaign.replace_last_turn(turn)
            self.summarizer.summaries.invalidate_from(replacing.number)
        else:
            self.campaign.append_turn(turn)
        timings["save"] = _ms_since(started)
        self._start_summary(plan)

        notices = list(plan.notices)
        if self.memory:
            if replacing:
                self.memory.undo_turn(replacing.number)
            self.memory.record_turn(turn)  # in the background
            notices += recall.notices + self.memory.take_problems()
        trace = self._trace(turn, plan, stats, timings, options.seed)
        trace.retrieved = recall.trace() if recall else []
        trace.attempts = len(attempts)
        return Reply(turn=turn, trace=trace, notices=notices, plan=plan)

    def _wait_for_background(self, cancel: threading.Event) -> None:
        """Wait for the summary and the last turn's notes, usually long done: they ran
        while the player was typing. On a busy machine they can take minutes, so a
        cancel (Esc) stops the wait at once; they go on in the background."""
        def settle_background() -> None:
            self.summarizer.wait()
            if self.memory:
                self.memory.wait()

        waiter = threading.Thread(target=settle_background, name="turn-waits", daemon=True)
        waiter.start()
        while waiter.is_alive():
            if cancel.is_set():
                raise TurnCancelled()
            waiter.join(0.05)

    def settle(self, reply: Reply) -> None:
        """Wait for the reply's background work (summary, memory writes), as a player's
        reading time would, and put the memory writes' time (events indexed and facts
        extracted) in its trace's `extract`."""
        self.summarizer.wait()
        if self.memory and reply.turn and reply.trace:
            self.memory.wait()
            reply.trace.timings_ms["extract"] = round(self.memory.write_ms(reply.turn.number), 3)

    def prompt_parts(self, history: list[Turn], player_input: str,
                     recall: Recall | None = None) -> PromptParts:
        """What this turn's prompt may hold: the turns the summary does not cover yet,
        the summary, and from the story memory's recall, pinned facts and memories."""
        parts = PromptParts(system=self.system_text, opening=self.world.opening,
                            summary=self.summarizer.summaries.current.text,
                            history=self.summarizer.history(history), player_input=player_input)
        if recall:
            parts.pinned = [item.text for item in recall.pinned]
            parts.memories = [item.to_prompt() for item in recall.memories]
        return parts

    def _start_summary(self, plan: PromptPlan) -> None:
        """Shares are sized with a typical input, so they do not move turn to turn."""
        floors = (plan.rendered.section_tokens.get("system", 0)
                  + plan.rendered.section_tokens.get("pinned", 0) + self.budget.input_allowance)
        self.summarizer.maybe_start(self.campaign.turns, self.budget.cap("history", floors),
                                    self.budget.cap("summary", floors))

    def _sampling(self) -> SamplingOptions:
        return SamplingOptions(
            temperature=self.settings.temperature, top_p=self.settings.top_p,
            top_k=self.settings.top_k, repeat_penalty=self.settings.repeat_penalty,
            max_tokens=self.settings.max_tokens,
        )

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
            autosave=self.campaign.save_state.to_json(),
        )


def _shared_turns(one: list[Turn], other: list[Turn]) -> int:
    """How many turns two versions of a story share from the start."""
    shared = 0
    for first, second in zip(one, other, strict=False):
        if first != second:
            break
        shared += 1
    return shared


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
