"""F2 / /memory: search, view, edit, pin/unpin and delete what the story remembers.
Every change goes straight to the memory store through the MemoryView protocol."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from storyteller.memory.entries import NOTES, MemoryEntry
from storyteller.memory.view import MemoryEntryNotFound, MemoryView, listing_order
from storyteller.tui.dialogs import ConfirmScreen

TITLE_CHARS = 30  # with the kind, fits the list at 120 columns


def entry_title(entry: MemoryEntry) -> str:
    """The entry's name; story passages and pins have none: the start of their text."""
    if entry.name:
        return entry.name
    text = " ".join(entry.text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def entry_option(entry: MemoryEntry) -> Option:
    label = Text("★ " if entry.pinned else "  ", style="bold")
    label.append(f"{entry.kind:<9} ", style="dim")
    label.append(entry_title(entry))
    if entry.source == NOTES:  # the story's own notes, not the world's lore
        label.append(f"  ✎ note, turn {entry.turn}", style="dim italic")
    return Option(label, id=entry.id)


def entry_origin(entry: MemoryEntry) -> str:
    """Where an entry comes from, for its details line."""
    if entry.source == NOTES:
        return f" · a note taken at turn {entry.turn} (/forget notes drops every note)"
    return f" · from turn {entry.turn}" if entry.turn else ""


class MemoryBrowser(Screen):
    BINDINGS = [
        Binding("escape", "dismiss", "Back"),
        Binding("ctrl+s", "save", "Save text", priority=True),
        Binding("ctrl+o", "pin", "Pin/unpin", priority=True),
        Binding("ctrl+d", "delete", "Delete", priority=True),
        Binding("ctrl+f", "focus_search", "Search", priority=True),
    ]

    def __init__(self, memory: MemoryView, search: str = ""):
        super().__init__()
        self.memory = memory
        self.initial_search = search
        self.entries: dict[str, MemoryEntry] = {}
        self.selected: MemoryEntry | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="memory"):
            with Vertical(id="memory-list") as left:
                left.border_title = "Story memory"
                yield Input(self.initial_search, placeholder="Search…", id="memory-search")
                yield OptionList(id="memory-entries")
            with Vertical(id="memory-detail") as right:
                right.border_title = "Entry"
                yield Static("", id="memory-meta", markup=False)
                yield TextArea("", id="memory-text", soft_wrap=True, disabled=True)
                with Horizontal(classes="buttons"):
                    yield Button("Save", id="memory-save", disabled=True, compact=True)
                    yield Button("Pin", id="memory-pin", disabled=True, compact=True)
                    yield Button("Delete", id="memory-delete", variant="error", disabled=True,
                                 compact=True)
        yield Static("", id="memory-message", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#memory-entries", OptionList).focus()

    def reload(self, keep: str | None = None) -> None:
        query = self.query_one("#memory-search", Input).value
        found = self.memory.search(query) if query.strip() else listing_order(self.memory.entries())
        self.entries = {entry.id: entry for entry in found}
        options = self.query_one("#memory-entries", OptionList)
        options.clear_options()
        options.add_options([entry_option(entry) for entry in found])
        self.query_one("#memory-list").border_subtitle = f"{len(found)} entries"
        if keep in self.entries:
            options.highlighted = list(self.entries).index(keep)
        elif found:
            options.highlighted = 0
        else:
            self.show(None)

    @on(Input.Changed, "#memory-search")
    def search_changed(self) -> None:
        self.reload()

    @on(OptionList.OptionHighlighted, "#memory-entries")
    def entry_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show(self.entries.get(event.option.id))

    def show(self, entry: MemoryEntry | None) -> None:
        self.selected = entry
        text = self.query_one("#memory-text", TextArea)
        for widget in (text, *self.query(".buttons Button")):
            widget.disabled = entry is None
        if entry is None:
            self.query_one("#memory-meta", Static).update("Nothing matches." if self.query_one(
                "#memory-search", Input).value else "The story has not remembered anything yet.")
            text.text = ""
            return
        origin = entry_origin(entry)
        pinned = " · pinned" if entry.pinned else ""
        passage = " · a story passage: Delete drops it" if entry.kind == "event" else ""
        self.query_one("#memory-meta", Static).update(
            f"{entry.kind} · {entry_title(entry)}{origin}{pinned}{passage}")
        text.text = entry.text
        text.read_only = entry.kind == "event"  # passages are the transcript's own words
        for button in ("#memory-save", "#memory-pin"):
            self.query_one(button, Button).disabled = entry.kind == "event"
        self.query_one("#memory-pin", Button).label = "Unpin" if entry.pinned else "Pin"

    @on(Button.Pressed, "#memory-save")
    def action_save(self) -> None:
        if self.selected is None:
            return
        text = self.query_one("#memory-text", TextArea).text.strip()
        if not text:
            self.say("An entry needs some text; to remove it, press Delete.")
            return
        self._change(lambda entry: self.memory.update(entry.id, text), "Saved.")

    @on(Button.Pressed, "#memory-pin")
    def action_pin(self) -> None:
        if self.selected is None:
            return
        pin = not self.selected.pinned
        self._change(lambda entry: self.memory.set_pinned(entry.id, pin),
                     "Pinned: it rides in every prompt." if pin else "Unpinned.")

    @on(Button.Pressed, "#memory-delete")
    def action_delete(self) -> None:
        entry = self.selected
        if entry is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._change(lambda e: self.memory.delete(e.id), f"Deleted {entry.name}.")

        self.app.push_screen(ConfirmScreen(f"Delete the {entry.kind} “{entry.name}” from "
                                           "the story's memory?"), callback=confirmed)

    def action_focus_search(self) -> None:
        self.query_one("#memory-search", Input).focus()

    def _change(self, change, done: str) -> None:
        entry = self.selected
        try:
            changed = change(entry)
        except MemoryEntryNotFound as error:
            self.say("A story passage cannot be edited or pinned; Delete drops it."
                     if entry.kind == "event" else str(error))
            self.reload(keep=entry.id)
            return
        self.say(done)
        self.reload(keep=changed.id if changed else None)

    def say(self, message: str) -> None:
        self.query_one("#memory-message", Static).update(message)
