"""The Textual application. `make_app` lets tests inject saves dirs and a narrator."""

from __future__ import annotations

from textual.app import App

from storyteller.config import Settings
from storyteller.narrator.base import Narrator
from storyteller.tui.game_screen import GameScreen


class StorytellerApp(App):
    CSS_PATH = "storyteller.tcss"
    TITLE = "storyteller"

    def __init__(self, settings: Settings, campaign_name: str, narrator: Narrator | None = None):
        super().__init__()
        self.settings = settings
        self.campaign_name = campaign_name
        self.narrator = narrator

    def on_mount(self) -> None:
        self.push_screen(GameScreen(self.settings, self.campaign_name, self.narrator))

    def on_unmount(self) -> None:
        screen_game = getattr(self.screen_stack[-1], "game", None) if self.screen_stack else None
        if screen_game is not None:
            screen_game.close(finish=False)  # a cut extraction is redone on the next start
        if screen_game is not None and self.narrator is None:
            screen_game.narrator.close()


def make_app(settings: Settings, campaign_name: str,
             narrator: Narrator | None = None) -> StorytellerApp:
    return StorytellerApp(settings, campaign_name, narrator)


def run_app(settings: Settings, campaign_name: str) -> int:
    make_app(settings, campaign_name).run()
    return 0
