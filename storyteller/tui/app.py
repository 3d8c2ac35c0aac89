"""The Textual application. `make_app` lets tests inject saves dirs and a narrator.
Without a campaign name the title screen opens first."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from storyteller.config import Settings
from storyteller.engine.game import Game
from storyteller.generation import Narrator
from storyteller.tui.game_screen import GameScreen
from storyteller.tui.title_screen import TitleScreen

DARK_THEME = "textual-dark"
LIGHT_THEME = "textual-light"


class StorytellerApp(App):
    CSS_PATH = "storyteller.tcss"
    TITLE = "storyteller"
    BINDINGS = [Binding("ctrl+t", "toggle_theme", "Theme", show=False)]

    def __init__(self, settings: Settings, campaign_name: str | None = None,
                 narrator: Narrator | None = None):
        super().__init__()
        self.settings = settings
        self.campaign_name = campaign_name
        self.narrator = narrator
        self.games: list[Game] = []  # closed on exit (with their models, if they loaded them)

    def on_mount(self) -> None:
        self.theme = DARK_THEME
        if self.campaign_name is None:
            self.push_screen(TitleScreen(self.settings))
        else:
            self.start_game(self.settings, self.campaign_name)

    def start_game(self, settings: Settings, campaign_name: str) -> None:
        screen = GameScreen(settings, campaign_name, self.narrator)
        if isinstance(self.screen, TitleScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    async def action_quit(self) -> None:
        """Stop a narration first, so the model is never freed while it generates."""
        for screen in self.screen_stack:
            if isinstance(screen, GameScreen):
                screen.cancel_event.set()
        for worker in list(self.workers):
            if worker.group == "narrator" and worker.is_running:
                await worker.wait()
        self.exit()

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def on_unmount(self) -> None:
        for game in self.games:
            game.close(finish=False)  # a cut extraction is redone on the next start


def make_app(settings: Settings, campaign_name: str | None = None,
             narrator: Narrator | None = None) -> StorytellerApp:
    return StorytellerApp(settings, campaign_name, narrator)


def run_app(settings: Settings, campaign_name: str | None) -> int:
    """The exit status: 1 when the app stopped on an error (Textual shows it)."""
    app = make_app(settings, campaign_name)
    app.run()
    return app.return_code or 0
