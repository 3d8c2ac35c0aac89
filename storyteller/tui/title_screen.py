"""The title screen: start a new campaign (name, world, model), continue one (with its
world, turns and when it was last played), or delete one after confirmation."""

from __future__ import annotations

from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from storyteller.config import Settings
from storyteller.errors import SaveError
from storyteller.narrator.registry import EMBEDDED
from storyteller.storage.listing import CampaignInfo, delete_campaign, list_campaigns
from storyteller.storage.lock import busy_error, open_elsewhere
from storyteller.storage.names import campaign_path, validate_name
from storyteller.storage.schema import CAMPAIGN_FILE
from storyteller.storage.worlds import list_worlds
from storyteller.tui.dialogs import ConfirmScreen


def played_at(iso: str) -> str:
    """'2026-11-20 14:02' from an ISO timestamp (shown as stored, in UTC)."""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return "?"


def model_choices(settings: Settings) -> list[tuple[str, str]]:
    choices = [("embedded (SmolLM2-135M)", EMBEDDED)]
    if settings.models_dir.is_dir():
        choices += [(path.name, path.name) for path in sorted(settings.models_dir.glob("*.gguf"))]
    if settings.model not in {value for _, value in choices}:
        choices.append((settings.model, settings.model))
    return choices


def world_choices(settings: Settings) -> list[tuple[str, str]]:
    """Shipped and imported worlds alike, by title; an imported one says so."""
    return [(f"{world.title} (imported)" if world.imported else world.title, world.name)
            for world in list_worlds(settings)]


class TitleScreen(Screen):
    BINDINGS = [
        Binding("ctrl+n", "focus_new", "New"),
        Binding("delete,ctrl+d", "delete", "Delete"),
        Binding("ctrl+q", "app.quit", "Quit", priority=True),
    ]

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings
        self.campaigns: list[CampaignInfo] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="title"):
            with Vertical(id="new-campaign") as new:
                new.border_title = "New campaign"
                yield Label("Name")
                yield Input(placeholder="my-quest", id="new-name", compact=True)
                yield Label("World")
                worlds = world_choices(self.settings)
                names = [name for _, name in worlds]
                default_world = self.settings.world if self.settings.world in names else None
                yield Select(worlds, value=default_world or Select.NULL, id="new-world",
                             allow_blank=not worlds, compact=True)
                yield Label("Model")
                yield Select(model_choices(self.settings), value=self.settings.model,
                             allow_blank=False, id="new-model", compact=True)
                yield Button("Start", variant="primary", id="new-start")
            with Vertical(id="saved-campaigns") as saved:
                saved.border_title = "Continue"
                yield DataTable(id="saves", cursor_type="row", zebra_stripes=True, cell_padding=1)
                yield Static("", id="no-saves", markup=False)
                with Horizontal(classes="buttons"):
                    yield Button("Continue", variant="success", id="continue")
                    yield Button("Delete", variant="error", id="delete")
        yield Static("", id="title-message", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = "a text adventure told by a local model"
        table = self.query_one("#saves", DataTable)
        table.add_columns("Name", "World", "Turns", "Played")
        self.load_campaigns()

    def load_campaigns(self) -> None:
        self.campaigns = list_campaigns(self.settings.saves_dir)
        table = self.query_one("#saves", DataTable)
        table.clear()
        for summary in self.campaigns:
            world = "(unreadable: delete or repair)" if summary.problem else summary.world
            played = played_at(summary.last_played) if summary.last_played else ""
            name = summary.name
            if summary.open_elsewhere:
                name += f" (open elsewhere: {summary.open_elsewhere})"
            table.add_row(name, world, str(summary.turns), played, key=summary.name)
        empty = not self.campaigns
        self.query_one("#no-saves", Static).update(
            "No saved campaigns yet: start one on the left." if empty else "")
        for button in self.query("#saved-campaigns Button"):
            button.disabled = empty
        (self.query_one("#new-name") if empty else table).focus()

    def selected(self) -> CampaignInfo | None:
        table = self.query_one("#saves", DataTable)
        if not self.campaigns or table.cursor_row >= len(self.campaigns):
            return None
        return self.campaigns[table.cursor_row]

    def say(self, message: str) -> None:
        self.query_one("#title-message", Static).update(message)

    # -- new ----------------------------------------------------------------

    @on(Button.Pressed, "#new-start")
    @on(Input.Submitted, "#new-name")
    def start_new(self) -> None:
        raw_name = self.query_one("#new-name", Input).value
        try:
            name = validate_name(raw_name)
            exists = (campaign_path(self.settings.saves_dir, name) / CAMPAIGN_FILE).exists()
        except SaveError as error:
            self.say(str(error))
            return
        if exists:
            self.say(f"A campaign named {name!r} already exists: pick it under Continue, "
                     "or choose another name.")
            return
        world = self.query_one("#new-world", Select).value
        if not isinstance(world, str):
            self.say("No world to start in: `storyteller worlds import FILE` adds one to "
                     f"{self.settings.user_worlds_dir}/.")
            return
        model = self.query_one("#new-model", Select).value
        self.app.start_game(self.settings.model_copy(update={"world": world, "model": model}),
                            name)

    def action_focus_new(self) -> None:
        self.query_one("#new-name", Input).focus()

    # -- continue and delete -------------------------------------------------------

    @on(DataTable.RowSelected, "#saves")
    @on(Button.Pressed, "#continue")
    def action_continue(self) -> None:
        summary = self.selected()
        if summary is None:
            self.say("No campaign to continue: start a new one.")
            return
        folder = campaign_path(self.settings.saves_dir, summary.name)
        if open_elsewhere(folder):  # asked now: it may have opened or closed since the list
            self.say(str(busy_error(folder)))
            self.load_campaigns()
            return
        self.app.start_game(self.settings, summary.name)

    @on(Button.Pressed, "#delete")
    def action_delete(self) -> None:
        summary = self.selected()
        if summary is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_campaign(self.settings.saves_dir, summary.name)
            except SaveError as error:
                self.say(str(error))
                return
            self.say(f"Deleted {summary.name}.")
            self.load_campaigns()

        turns = f"its {summary.turns} turns" if summary.turns != 1 else "its 1 turn"
        self.app.push_screen(ConfirmScreen(f"Delete the campaign {summary.name!r} and {turns}? "
                                           "This cannot be undone."), callback=confirmed)
