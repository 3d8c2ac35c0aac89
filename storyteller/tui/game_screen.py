"""The game screen: the story so far, narration streaming in, an input line, a side
panel of what the story remembers, and a status bar.

Widgets never call the model: the turn runs in a thread worker that posts small
messages (chunk, done, cancelled, failed) back; the handlers update the widgets."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, LoadingIndicator, Markdown, Static

from storyteller.config import Settings
from storyteller.engine.game import Game
from storyteller.engine.reply import Reply, TurnCancelled
from storyteller.engine.session import open_campaign, start_game
from storyteller.errors import StorytellerError
from storyteller.generation import Narrator
from storyteller.storage.campaign import Campaign
from storyteller.storage.transcript import Turn
from storyteller.storage.worlds import World
from storyteller.tui.help_screen import HelpScreen
from storyteller.tui.inspector import PromptInspector
from storyteller.tui.memory_browser import MemoryBrowser
from storyteller.tui.screen_commands import SCREEN_COMMANDS, canonical, command_names
from storyteller.tui.settings_screen import SettingsScreen
from storyteller.tui.widgets import ActionInput, SidePanel, StatusBar, context_segments


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
class CampaignOpened(Message):
    """The story can be shown: the models are still loading."""

    campaign: Campaign
    world: World


@dataclass
class LoadingStage(Message):
    stage: str  # "narrator", "embedder" or "memory" (session.start_game)
    seconds: float  # since the loading began


@dataclass
class GameLoaded(Message):
    game: Game


@dataclass
class GameFailed(Message):
    error: str


class MemoryChanged(Message):
    """The story memory's background work wrote passages or notes."""


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
        Binding("escape", "cancel", "Stop"),
        Binding("ctrl+z", "undo", "Undo"),
        Binding("f1", "help", "Help"),
        Binding("f2", "memory", "Memory"),
        Binding("f3", "inspect", "Prompt"),
        Binding("f4", "settings", "Settings"),
        Binding("ctrl+b", "toggle_panel", "Panel", show=False),
        Binding("ctrl+q", "app.quit", "Quit", priority=True),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide"), (160, "-very-wide")]

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
        self.last_reply: Reply | None = None  # the last narrated turn, for the inspector
        self.waiting_action = ""  # sent before the models were loaded: played once they are
        self.loading: list[tuple[str, float]] = []  # (stage, seconds when it began)
        self.loaded: list[str] = []  # "narrator 2.1 s": the stages done, for the status line

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            # #log fills the view at least, so a short story starts at the top
            with VerticalScroll(id="story"), Vertical(id="log"):
                yield LoadingIndicator(id="loading")
            yield SidePanel(id="side")
        yield ActionInput(command_names(), id="action",
                          placeholder="What do you do?  (/help for commands)", disabled=True)
        yield StatusBar(f"Loading the narrator ({self.settings.model})…", id="status",
                        markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.title = f"storyteller · {self.campaign_name}"
        self.load_game()

    # -- loading ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="loader", exit_on_error=False)
    def load_game(self) -> None:
        """The campaign first, shown at once (its opening is plain text), then the
        models and the memory, which take seconds."""
        started = time.perf_counter()
        try:
            campaign, world, lock = open_campaign(self.settings, self.campaign_name)
            self.post_message(CampaignOpened(campaign, world))
            game = start_game(self.settings, campaign, world, lock, self.injected_narrator,
                              on_stage=lambda stage: self.post_message(LoadingStage(
                                  stage, time.perf_counter() - started)))
        except StorytellerError as error:
            self.post_message(GameFailed(str(error)))
        else:
            self.post_message(GameLoaded(game))

    async def on_campaign_opened(self, message: CampaignOpened) -> None:
        await self.query("#loading").remove()
        await self._show_story(message.campaign, message.world)
        self.sub_title = message.world.title
        action = self.query_one("#action", ActionInput)
        action.disabled = False  # typing may begin; Enter waits for the narrator
        action.focus()

    def on_loading_stage(self, message: LoadingStage) -> None:
        """The parts loaded so far with their times, then the one loading now."""
        if self.loading:
            name, began = self.loading[-1]
            self.loaded.append(f"{name} {message.seconds - began:.1f} s")
        self.loading.append((message.stage, message.seconds))
        what = {"narrator": f"the narrator ({self.settings.model})",
                "embedder": "the embedder", "memory": "the memory index"}[message.stage]
        done = f"Loaded: {', '.join(self.loaded)}. " if self.loaded else ""
        self.query_one("#status", StatusBar).update(f"{done}Loading {what}…")

    async def on_game_loaded(self, message: GameLoaded) -> None:
        game = message.game
        self.app.games.append(game)
        self.game = game  # the screen is ready once the game is set (tests wait on it)
        self.refresh_panel()
        game.on_background_change(lambda: self.post_message(MemoryChanged()))
        self._show_status("ready")
        for notice in game.campaign.notices:
            self.notify(notice, severity="warning", timeout=30)
        for notice in game.opening_notices:
            self.notify(notice)
        action = self.query_one("#action", ActionInput)
        if self.waiting_action and action.value.strip() == self.waiting_action:
            await self._act(action, self.waiting_action)  # sent while the models loaded
        self.waiting_action = ""

    def on_memory_changed(self, message: MemoryChanged) -> None:
        self.refresh_panel()

    async def _show_story(self, campaign: Campaign, world: World) -> None:
        """The opening and every turn; after /load, the story of the checkpoint."""
        log = self.query_one("#log", Vertical)
        await log.remove_children()
        views = [TurnView("", world.opening)]
        views += [TurnView(t.input, t.output, t.number) for t in campaign.turns]
        await log.mount_all(views)
        self.query_one("#story", VerticalScroll).anchor()

    async def on_game_failed(self, message: GameFailed) -> None:
        await self.query("#loading").remove()
        self.query_one("#action", ActionInput).disabled = True
        await self.query_one("#log").mount(Static(message.error, classes="error", markup=False))
        self.query_one("#status", StatusBar).update(
            "Could not start: see the message above. Ctrl+Q quits.")

    # -- input --------------------------------------------------------------

    @on(ActionInput.Submitted, "#action")
    async def submit_action(self, event: ActionInput.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.game is None:
            self.waiting_action = text
            self.notify("The narrator is still loading: your action goes as soon as it is "
                        "ready (it stays in the input line until then).")
            return
        if self.narrating:
            self.notify("The narrator is still speaking: wait, or press Esc to stop it.")
            return
        await self._act(event.input, text)

    async def _act(self, action: ActionInput, text: str) -> None:
        action.remember(text)
        action.value = ""
        # follow the story again: a scroll (even at the bottom) stops the log following it
        self.query_one("#story", VerticalScroll).anchor()
        if text.startswith("/"):
            name, _, argument = text.partition(" ")
            if await self._handle_locally(canonical(name), argument.strip()):
                return
        await self.start_turn(text)

    async def _handle_locally(self, name: str, argument: str) -> bool:
        """Commands the UI answers itself; False hands the line to the engine."""
        if name in SCREEN_COMMANDS:
            self.run_screen_command(name, argument)
            return True
        if name == "/edit" and not argument and self.game.campaign.turns:
            action = self.query_one("#action", ActionInput)
            action.value = f"/edit {self.game.campaign.turns[-1].input}"
            action.cursor_position = len(action.value)
            self.notify("Change your last action, then press Enter.")
            return True
        return False

    def run_screen_command(self, name: str, argument: str = "") -> None:
        if name == "/help":
            self.app.push_screen(HelpScreen())
        elif name == "/memory":
            self.open_memory(argument)
        elif name == "/inspect":
            self.app.push_screen(PromptInspector(self.last_reply))
        elif name == "/settings":
            self.open_settings()
        elif name == "/theme":
            self.app.action_toggle_theme()

    def open_memory(self, search: str = "") -> None:
        if self.game.memory is None:
            self.notify("The story memory is off in this game.")
            return
        self.app.push_screen(MemoryBrowser(self.game.memory, search),
                             callback=lambda _: self.refresh_panel())

    def open_settings(self) -> None:
        self.app.push_screen(SettingsScreen(self.game), callback=self._settings_closed)

    def _settings_closed(self, saved: bool | None) -> None:
        if saved:
            self.notify("Settings saved with the campaign.")

    # -- turns --------------------------------------------------------------

    async def start_turn(self, text: str) -> None:
        action = self._action_shown(text)
        if action is not None:
            self.pending = TurnView(action)
            await self.query_one("#log").mount(self.pending)
            self.stream = Markdown.get_stream(self.pending.markdown)
            self._show_status("narrating… (Esc stops; not saved yet)")
        self.narrating = True
        self.cancel_event = threading.Event()
        self.play(text)

    def _action_shown(self, text: str) -> str | None:
        """The action a line narrates, shown above the narration; None for commands
        that narrate nothing."""
        if not text.startswith("/"):
            return text
        name, _, argument = text.partition(" ")
        name = canonical(name)
        if self.game.campaign.turns and name == "/retry":
            return self.game.campaign.turns[-1].input
        if self.game.campaign.turns and name == "/edit" and argument.strip():
            return argument.strip()
        return None

    @work(thread=True, exclusive=True, group="narrator", exit_on_error=False)
    def play(self, text: str) -> None:
        try:
            reply = self.game.submit(text, on_chunk=self._post_chunk, cancel=self.cancel_event)
        except TurnCancelled:
            self.post_message(NarrationStopped(text))
        except StorytellerError as error:
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
        if reply.trace is not None:
            self.last_reply = reply
        self.pending = None
        self.narrating = False
        if reply.loaded_checkpoint:
            await self._show_story(self.game.campaign, self.game.world)
        for notice in reply.notices:
            self.notify(notice, severity="warning")
        if reply.message:
            await self.add_note(reply.message)
        if reply.quit:
            self.app.exit()
            return
        self.refresh_panel()
        self._show_status("autosaved" if reply.turn or reply.undone else "ready")

    async def on_narration_stopped(self, message: NarrationStopped) -> None:
        await self._stop_stream()
        if self.pending is not None:
            await self.pending.remove()
            self.pending = None
        self.narrating = False
        action = self.query_one("#action", ActionInput)
        if not action.value:
            action.value = message.player_text  # nothing typed is lost
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
            self._show_status("the turn failed, not saved")
        else:
            self._show_status("stopped; the turn was not saved")

    async def add_note(self, text: str) -> None:
        await self.query_one("#log").mount(Static(text, classes="note", markup=False))

    async def _stop_stream(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None

    async def _remove_turn_view(self, turn: Turn) -> None:
        for view in self.query(TurnView):
            if view.number == turn.number and view is not self.pending:
                await view.remove()

    # -- actions --------------------------------------------------------------

    def action_cancel(self) -> None:
        if self.narrating:
            self.cancel_event.set()

    async def action_undo(self) -> None:
        if self.game is None or self.narrating:
            self.notify("Wait for the narrator to finish (or press Esc), then undo.")
            return
        await self.start_turn("/undo")

    def action_help(self) -> None:
        self.run_screen_command("/help")

    def action_memory(self) -> None:
        if self.game is not None:
            self.open_memory()

    def action_inspect(self) -> None:
        if self.game is not None:
            self.run_screen_command("/inspect")

    def action_settings(self) -> None:
        if self.game is not None and not self.narrating:
            self.open_settings()

    def action_toggle_panel(self) -> None:
        self.toggle_class("-panel-toggled")

    # -- side panel and status ---------------------------------------------------

    def refresh_panel(self) -> None:
        self.query_one(SidePanel).refresh_entries(self.game.memory if self.game else None)

    def _show_status(self, state: str) -> None:
        game = self.game
        trace = self.last_reply.trace if self.last_reply else None
        saved = game.campaign.save_state.describe()
        if saved != "saved":  # a failing disk shows at once
            state = saved if state == "autosaved" else f"{state} · {saved}"
        state = f"turn {game.campaign.next_turn_number} · {state}"
        status = self.query_one("#status", StatusBar)
        if trace is None:
            status.show(game.narrator.model_id, state)
        else:
            status.show(game.narrator.model_id, state, trace.tokens_per_second,
                        context_segments(trace.sections, trace.completion_tokens), trace.n_ctx)
