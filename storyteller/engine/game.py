"""The game, headless: one line of player input at a time. A thin facade over the turn
pipeline (recall, prompt, narration) and the timeline (the story's turns and the stores
derived from them). The terminal UI and `storyteller run` both drive it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from storyteller.config import Settings
from storyteller.engine.commands import run_command
from storyteller.engine.content_log import ContentLog
from storyteller.engine.derived import DerivedStores
from storyteller.engine.pipeline import Telling, turn_pipeline
from storyteller.engine.prefill import Prefill
from storyteller.engine.reply import ChunkCallback, Reply
from storyteller.engine.timeline import Timeline
from storyteller.engine.trace import TIMING_STAGES, TurnTrace
from storyteller.errors import SaveError, StorytellerError
from storyteller.generation import Narrator, check_max_tokens
from storyteller.storage.campaign import Campaign
from storyteller.storage.lock import CampaignLock
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World
from storyteller.text import clean_player_input

if TYPE_CHECKING:
    from storyteller.memory.story import StoryMemory


class Game:
    def __init__(self, campaign: Campaign, narrator: Narrator, settings: Settings,
                 world: World, system_text: str, memory: StoryMemory | None = None,
                 background: Narrator | None = None, owns_models: bool = False,
                 lock: CampaignLock | None = None):
        """`background` does the work behind the player's back (summaries, and the
        memory's note-taking): a second context on the same model keeps the narrator's
        KV cache for the story. `lock` (the campaign's one-writer lock) is released by
        close()."""
        check_max_tokens(settings.max_tokens, narrator.n_ctx)
        self.campaign = campaign
        self.world = world
        self.narrator = narrator
        self.memory = memory
        self.owns_models = owns_models  # loaded by open_game: close() frees them
        self.lock = lock
        self.background = background or narrator
        self.pipeline = turn_pipeline(campaign, narrator, self.background, settings, world,
                                      system_text, memory)
        self.summarizer = self.pipeline.summarizer
        stores = [self.summarizer] + ([memory] if memory else [])
        self.timeline = Timeline(campaign, DerivedStores(stores))
        self.content_log = ContentLog(campaign.content_log_path, settings.content_log_level)
        self.opening_notices: list[str] = []  # said once when the game opens
        self.prefill = Prefill(narrator if settings.prefill else None, self._next_prefixes,
                               self.pipeline.adopt)
        self.pipeline.gated = self.prefill.enabled
        self._playing = False  # a line is being played: no prefill may start meanwhile
        self._prefill_gate = threading.Lock()
        self.summarizer.on_summary = self._prefill_between_turns

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self.pipeline.settings = settings
        self.content_log.level = settings.content_log_level

    def on_background_change(self, listener: Callable[[], None]) -> None:
        """listener() runs (on a background thread) when notes or passages were written."""
        if self.memory:
            self.memory.on_change(listener)

    # -- one line of input ----------------------------------------------------------

    def submit(self, raw_text: str, on_chunk: ChunkCallback | None = None,
               cancel: threading.Event | None = None) -> Reply:
        """Play one line: a command (starting with '/') or an action. Any line stops the
        prefill first; once it is played, the next turn's prefix is prefilled."""
        with self._prefill_gate:
            self._playing = True
            self.prefill.cancel()
        reply = None
        try:
            reply = self._submit(raw_text, on_chunk, cancel)
        finally:
            with self._prefill_gate:
                self._playing = False
            if reply is None or not reply.quit:
                self._prefill_between_turns()
        return reply

    def _prefill_between_turns(self) -> None:
        """Prefill the next turn's prefix, unless a line is being played (it prefills
        once it is over). A summary that lands between turns starts one too, so that the
        next turn can use it."""
        with self._prefill_gate:
            if not self._playing:
                self.prefill.start()

    def _submit(self, raw_text: str, on_chunk: ChunkCallback | None,
                cancel: threading.Event | None) -> Reply:
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
            raise SaveError(
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
        except StorytellerError as error:
            self.content_log.record_failure(text, str(error))
            raise

    def narrate(self, player_input: str, on_chunk: ChunkCallback | None = None,
                cancel: threading.Event | None = None, replacing: Turn | None = None) -> Reply:
        """Narrate an action and record the turn. With `replacing`, that (last) turn is
        taken back only once the new narration is complete, so a cancelled or failed
        retelling keeps the old turn."""
        turns = self.timeline.turns
        history = turns[:-1] if replacing else turns
        number = replacing.number if replacing else self.campaign.next_turn_number
        with self.memory.telling() if self.memory else contextlib.nullcontext():
            telling = self.pipeline.tell(history, number, player_input, on_chunk,
                                         cancel or threading.Event(), retelling=bool(replacing))
        turn = Turn(number, telling.plan.parts.player_input, telling.output,
                    model=self.narrator.model_id)
        started = _now_ms()
        if replacing:
            self.timeline.replace_last(turn)
        else:
            self.timeline.append(turn)
        telling.timings["save"] = _now_ms() - started
        notices = telling.notices + (self.memory.take_problems() if self.memory else [])
        return Reply(turn=turn, trace=self._trace(turn, telling), notices=notices,
                     plan=telling.plan, undone=replacing)

    # -- the timeline ---------------------------------------------------------------

    def undo(self) -> Reply:
        undone = self.timeline.undo()
        if undone is None:
            return Reply(message="Nothing to undo yet.")
        return Reply(message=f"Turn {undone.number} taken back.", undone=undone)

    def retry(self, on_chunk: ChunkCallback | None = None,
              cancel: threading.Event | None = None) -> Reply:
        if not self.timeline.turns:
            return Reply(message="Nothing to retry yet: type an action first.")
        last = self.timeline.turns[-1]
        return self.narrate(last.input, on_chunk, cancel, replacing=last)

    def edit(self, new_input: str, on_chunk: ChunkCallback | None = None,
             cancel: threading.Event | None = None) -> Reply:
        """Change the last action and tell that turn again."""
        if not self.timeline.turns:
            return Reply(message="Nothing to edit yet: type an action first.")
        return self.narrate(new_input, on_chunk, cancel, replacing=self.timeline.turns[-1])

    def save_checkpoint(self, name: str) -> Reply:
        path = self.timeline.save_checkpoint(name)
        return Reply(message=f"Checkpoint {path.stem!r} saved at turn {len(self.timeline.turns)}; "
                             f"/load {path.stem} comes back to it.", saved_checkpoint=path.stem)

    def load_checkpoint(self, name: str) -> Reply:
        """Go back to a checkpoint. The story as it was is kept as a new checkpoint first."""
        kept, loaded = self.timeline.load_checkpoint(name)
        return Reply(message=f"Loaded checkpoint {loaded!r}: {len(self.timeline.turns)} turns. "
                             f"The story before loading is kept as {kept!r} (/load {kept}).",
                     saved_checkpoint=kept, loaded_checkpoint=loaded)

    def list_checkpoints(self) -> Reply:
        found = self.timeline.checkpoints()
        if not found:
            return Reply(message="No checkpoints yet: /save NAME makes one. (Every turn is "
                                 "saved anyway.)")
        lines = ["Checkpoints (/load NAME):"]
        lines += [f"  {c.name}  {c.turns} turns  {c.created}" for c in found]
        return Reply(message="\n".join(lines))

    # -- background work and closing ----------------------------------------------------

    def settle(self, reply: Reply | None = None) -> None:
        """Wait for the background work (summary, memory writes, then the prefill of the
        next prompt), as a player's reading time would, and put the turn's memory writing
        (passages indexed, notes taken) in its trace's `extract`."""
        self.timeline.derived.settle()
        self.prefill.wait()
        if reply:
            self.fill_extract(reply)

    def turn_settled(self, reply: Reply) -> bool:
        """Whether the reply's own turn has had its memory written (passages, notes)."""
        return not (self.memory and reply.turn) or self.memory.written(reply.turn.number)

    def fill_extract(self, reply: Reply) -> None:
        """Put the turn's memory writing time in its trace's `extract`."""
        if self.memory and reply.turn and reply.trace:
            reply.trace.timings_ms["extract"] = round(self.memory.write_ms(reply.turn.number), 3)

    def close(self, finish: bool = True) -> None:
        """Finish (or, with finish=False, cancel) the background work, free the models
        this game loaded, then let another storyteller open the campaign."""
        with self._prefill_gate:
            self._playing = True  # for good: a summary landing now starts no prefill
            self.prefill.cancel()
        self.prefill.wait()
        try:
            if self.memory:
                self.memory.close(finish)
            self.summarizer.settle()
            if self.owns_models:
                self.narrator.close()
                if self.background is not self.narrator:
                    self.background.close()
        finally:
            if self.lock:
                self.lock.release()

    def _next_prefixes(self) -> tuple[list[int], list[int] | None]:
        """The next turn's stable prefix (and a new layout's), the last action standing
        in for the next."""
        turns = self.timeline.turns
        return self.pipeline.stable_prefixes(turns, self.campaign.next_turn_number,
                                             turns[-1].input if turns else "")

    def _trace(self, turn: Turn, telling: Telling) -> TurnTrace:
        plan = telling.plan
        return TurnTrace(
            turn=turn.number, input=turn.input, output=turn.output,
            prompt=plan.rendered.text, prompt_tokens=len(plan.rendered),
            completion_tokens=telling.stats.completion_tokens, n_ctx=self.narrator.n_ctx,
            max_tokens=self.settings.max_tokens,
            sections=[section.to_json() for section in plan.sections],
            retrieved=telling.retrieved,
            timings_ms={stage: round(telling.timings.get(stage, 0.0), 3)
                        for stage in TIMING_STAGES},
            model=self.narrator.model_id, seed=telling.seed,
            autosave=self.campaign.save_state.to_json(), attempts=telling.attempts,
            scaffold_cut=telling.scaffold_cut, evaluated_tokens=telling.evaluated_tokens,
        )


def _now_ms() -> float:
    return time.perf_counter() * 1000
