"""The game screen: the story so far, narration streaming in, an input line, a status bar.

Widgets never call the model: the turn runs in a thread worker that posts small
messages (chunk, done, cancelled, failed) back; the handlers update the widgets."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, LoadingIndicator, Markdown, Static

from storyteller.campaign import CampaignError, Turn
from storyteller.config import Settings
from storyteller.engine.game import Game, Reply, TurnCancelled
from storyteller.engine.session import open_game
from storyteller.narrator.base import Narrator, NarratorError


class TurnView(Vertical):
    """One turn in the story log: the player's action, then the narration."""

    def __init__(self, action: str, narration: str = "", number: int | None = None):
        super().__init__(classes="turn")
        self.action = action
        self.narration = narration
        self.number = number

    def compose(self) -> ComposeResult:
        if self.action:
            yield Static(f"> {self.action}", classes="action", markup=False)
        yield Markdown(self.narration, classes="narration")

    @property
    def markdown(self) -> Markdown:
        return self.query_one(".narration", Markdown)


@dataclass
class GameLoaded(Message):
    game: Game


@dataclass
class GameFailed(Message):
    error: str


@dataclass
class NarrationChunk(Message):
    text: str


@dataclass
class NarrationDone(Message):
    reply: Reply


@dataclass
class NarrationStopped(Message):
    """Cancelled (error is empty) or failed: nothing was recorded."""

    player_text: str
    error: str = ""


class GameScreen(Screen):
    BINDINGS = [
        Binding("escape", "cancel", "Stop narration"),
        Binding("ctrl+q", "app.quit", "Quit", priority=True),
    ]

    def __init__(self, settings: Settings, campaign_name: str, narrator: Narrator | None = None):
        super().__init__()
        self.settings = settings
        self.campaign_name = campaign_name
        self.injected_narrator = narrator
        self.game: Game | None = None
        self.cancel_event = threading.Event()
        self.narrating = False
        self.pending: TurnView | None = None
        self.stream = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="story"):
            yield LoadingIndicator(id="loading")
        yield Input(id="action", placeholder="What do you do?  (/help for commands)",
                    disabled=True)
        yield Static(f"Loading the narrator ({self.settings.model})…", id="status",
                     markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"storyteller · {self.campaign_name}"
        self.load_game()

    # -- loading ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="loader", exit_on_error=False)
    def load_game(self) -> None:
        try:
            game = open_game(self.settings, self.campaign_name, self.injected_narrator)
        except (CampaignError, NarratorError) as error:
            self.post_message(GameFailed(str(error)))
        else:
            self.post_message(GameLoaded(game))

    async def on_game_loaded(self, message: GameLoaded) -> None:
        game = message.game
        await self.query_one("#loading").remove()
        await self._show_story(game)
        self.sub_title = game.world.title
        saved = game.campaign.save_state.describe()
        self._set_status(f"{game.narrator.model_id} · ready · turn "
                         f"{game.campaign.next_turn_number} · {saved}")
        action = self.query_one("#action", Input)
        action.disabled = False
        action.focus()
        self.game = game  # last: the screen is ready once the game is set

    async def _show_story(self, game: Game) -> None:
        """The opening and every turn; after /load, the story of the checkpoint."""
        story = self.query_one("#story", VerticalScroll)
        await story.remove_children()
        views = [TurnView("", game.world.opening)]
        views += [TurnView(t.input, t.output, t.number) for t in game.campaign.turns]
        await story.mount_all(views)
        story.anchor()

    async def on_game_failed(self, message: GameFailed) -> None:
        await self.query_one("#loading").remove()
        await self.query_one("#story").mount(Static(message.error, classes="error", markup=False))
        self._set_status("Could not start: see the message above. Ctrl+Q quits.")

    # -- turns --------------------------------------------------------------

    @on(Input.Submitted, "#action")
    async def submit_action(self, event: Input.Submitted) -> None:
        if self.game is None or self.narrating:
            self.notify("The narrator is still speaking: wait, or press Esc to stop it.")
            return
        text = event.value
        event.input.value = ""
        command = text.strip().lower()
        if command.startswith("/retry") and self.game.campaign.turns:
            await self._start_pending(self.game.campaign.turns[-1].input)
        elif not command.startswith("/") and command:
            await self._start_pending(text.strip())
        self.narrating = True
        self.cancel_event = threading.Event()
        self.play(text)

    async def _start_pending(self, action: str) -> None:
        self.pending = TurnView(action)
        await self.query_one("#story").mount(self.pending)
        self.stream = Markdown.get_stream(self.pending.markdown)
        self._set_status(f"{self.game.narrator.model_id} · narrating… (Esc stops)")

    @work(thread=True, exclusive=True, group="narrator", exit_on_error=False)
    def play(self, text: str) -> None:
        try:
            reply = self.game.submit(text, on_chunk=self._post_chunk, cancel=self.cancel_event)
        except TurnCancelled:
            self.post_message(NarrationStopped(text))
        except (NarratorError, CampaignError) as error:
            self.post_message(NarrationStopped(text, str(error)))
        else:
            self.post_message(NarrationDone(reply))

    def _post_chunk(self, text: str) -> None:
        self.post_message(NarrationChunk(text))

    async def on_narration_chunk(self, message: NarrationChunk) -> None:
        if self.stream is not None:
            await self.stream.write(message.text)

    async def on_narration_done(self, message: NarrationDone) -> None:
        reply = message.reply
        await self._stop_stream()
        if reply.undone is not None:
            await self._remove_turn_view(reply.undone)
        if reply.turn is not None and self.pending is not None:
            self.pending.number = reply.turn.number
            await self.pending.markdown.update(reply.turn.output)
        self.pending = None
        self.narrating = False
        if reply.loaded_checkpoint:
            await self._show_story(self.game)
        for notice in reply.notices:
            self.notify(notice, severity="warning")
        if reply.message:
            await self.query_one("#story").mount(Static(reply.message, classes="note",
                                                        markup=False))
        if reply.quit:
            self.app.exit()
            return
        self._show_turn_status(reply)

    async def on_narration_stopped(self, message: NarrationStopped) -> None:
        await self._stop_stream()
        if self.pending is not None:
            await self.pending.remove()
            self.pending = None
        self.narrating = False
        action = self.query_one("#action", Input)
        if not action.value:
            action.value = message.player_text  # nothing typed is lost
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
            self._set_status(f"{self.game.narrator.model_id} · the turn failed, not saved · "
                             f"{self.game.campaign.save_state.describe()}")
        else:
            self._set_status(f"{self.game.narrator.model_id} · stopped; the turn was not saved")

    def action_cancel(self) -> None:
        if self.narrating:
            self.cancel_event.set()

    async def _stop_stream(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None

    async def _remove_turn_view(self, turn: Turn) -> None:
        for view in self.query(TurnView):
            if view.number == turn.number and view is not self.pending:
                await view.remove()

    # -- status -------------------------------------------------------------

    def _show_turn_status(self, reply: Reply) -> None:
        game = self.game
        parts = [game.narrator.model_id]
        if reply.trace is not None:
            parts.append(f"{reply.trace.tokens_per_second:.0f} tok/s")
            parts.append(f"context {reply.trace.prompt_tokens + reply.trace.completion_tokens}"
                         f"/{reply.trace.n_ctx}")
        parts.append(f"turn {game.campaign.next_turn_number}")
        parts.append((reply.autosave or game.campaign.save_state).describe())
        self._set_status(" · ".join(parts))

    def _set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)
