"""F4 / /settings: sampling settings and the content-log level, saved with the campaign."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from storyteller.engine.game import Game
from storyteller.engine.tuning import (
    CONTENT_LOG_LEVELS,
    current_settings,
    save_settings,
)
from storyteller.errors import StorytellerError
from storyteller.generation import Sampling

FIELDS = {name: info.description for name, info in Sampling.model_fields.items()}


class SettingsScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("escape", "dismiss(False)", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(self, game: Game):
        super().__init__()
        self.game = game

    def compose(self) -> ComposeResult:
        values = current_settings(self.game)
        with Vertical(id="settings-box", classes="dialog") as box:
            box.border_title = f"Settings · {self.game.campaign.name}"
            with Grid(id="settings-grid"):
                for name, label in FIELDS.items():
                    yield Label(label)
                    yield Input(str(getattr(values, name)), id=f"setting-{name}", compact=True)
                yield Label("Content log")
                yield Select([(f"{level}: {text}", level)
                              for level, text in CONTENT_LOG_LEVELS.items()],
                             value=values.content_log_level, allow_blank=False,
                             id="setting-content_log_level", compact=True)
            yield Static("", id="settings-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save (Ctrl+S)", variant="primary", id="settings-save")
                yield Button("Cancel (Esc)", id="settings-cancel")

    def values(self) -> dict:
        values: dict = {name: self.query_one(f"#setting-{name}", Input).value.strip()
                        for name in FIELDS}
        values["content_log_level"] = self.query_one("#setting-content_log_level", Select).value
        return values

    @on(Button.Pressed, "#settings-save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        try:
            save_settings(self.game, self.values())
        except StorytellerError as error:
            self.query_one("#settings-error", Static).update(f"{error} Nothing was changed.")
            return
        self.dismiss(True)

    @on(Button.Pressed, "#settings-cancel")
    def cancel(self) -> None:
        self.dismiss(False)
