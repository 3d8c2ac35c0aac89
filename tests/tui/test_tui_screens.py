"""Every screen and command of the terminal app, driven by Pilot with the scripted
narrator (the model is beside the point here) and an in-memory story memory."""

import json
import socket
import subprocess
import sys

import pytest
from interop_support import SHARED
from textual.widgets import DataTable, Input, OptionList, Select, Static, TextArea
from tui_support import (
    actions,
    game_ready,
    make_campaign,
    narrations,
    notes,
    play,
    play_and_wait,
    status,
    wait_until,
)

from storyteller import cli
from storyteller.engine.commands import COMMANDS, Command
from storyteller.engine.game import Reply
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign
from storyteller.storage.interop.importer import import_world
from storyteller.tui import app as tui_app
from storyteller.tui.app import DARK_THEME, LIGHT_THEME, make_app
from storyteller.tui.dialogs import ConfirmScreen
from storyteller.tui.game_screen import GameScreen
from storyteller.tui.help_screen import HelpScreen
from storyteller.tui.inspector import PromptInspector
from storyteller.tui.memory_browser import MemoryBrowser
from storyteller.tui.settings_screen import SettingsScreen
from storyteller.tui.title_screen import TitleScreen, world_choices
from storyteller.tui.widgets import ActionInput, SidePanel

SIZE = (100, 30)


def game_app(settings, replies=None, **narrator_options):
    """The app on a real story memory (the emberfall world's lore), narrated by the
    scripted backend."""
    narrator = ScriptedNarrator(replies=replies, **narrator_options)
    return make_app(settings, "quest", narrator)


# -- title screen ----------------------------------------------------------------

async def test_without_a_campaign_the_command_line_opens_the_title_screen(monkeypatch):
    opened = []
    monkeypatch.setattr(tui_app, "run_app", lambda settings, name: opened.append(name) or 0)
    assert cli.main([]) == 0
    assert cli.main(["--campaign", "quest"]) == 0
    assert opened == [None, "quest"]


def test_an_app_that_stops_on_an_error_exits_non_zero(monkeypatch, settings):
    class BrokenApp(tui_app.StorytellerApp):
        def on_mount(self) -> None:
            raise RuntimeError("a bug in the app")

        def run(self, **options):
            return super().run(headless=True)

    monkeypatch.setattr(tui_app, "make_app", lambda settings, name: BrokenApp(
        settings, name, ScriptedNarrator()))
    assert cli.main(["--saves-dir", str(settings.saves_dir)]) == 1


async def test_title_screen_starts_a_new_campaign_in_the_chosen_world(settings):
    app = make_app(settings, None, ScriptedNarrator())
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, TitleScreen)
        assert "No saved campaigns yet" in str(app.screen.query_one("#no-saves").render())
        app.screen.query_one("#new-world", Select).value = "lanternsea"
        app.screen.query_one("#new-name", Input).value = "sea quest"
        await pilot.pause()
        await pilot.click("#new-start")
        await game_ready(pilot)
        assert isinstance(app.screen, GameScreen)
        assert app.screen.game.world.name == "lanternsea"
    assert Campaign.load(settings.saves_dir, "sea quest").meta["world"] == "lanternsea"


async def test_title_screen_starts_a_campaign_in_an_imported_world_at_once(settings):
    imported = import_world(SHARED / "Eldoria.json", settings.user_worlds_dir, name="eldoria")
    app = make_app(settings, None, ScriptedNarrator())
    async with app.run_test(size=SIZE) as pilot:
        choices = dict((value, label) for label, value in world_choices(settings))
        assert choices["eldoria"].endswith("(imported)") and "emberfall" in choices
        worlds = app.screen.query_one("#new-world", Select)
        worlds.value = "eldoria"  # refused unless it is one of the options
        app.screen.query_one("#new-name", Input).value = "woods"
        await pilot.pause()
        await pilot.click("#new-start")
        await game_ready(pilot)
        assert app.screen.game.world.name == "eldoria"
        assert "Shadowfang" in " ".join(entry.text for entry in app.screen.game.world.lore)
    saved = Campaign.load(settings.saves_dir, "woods")
    assert saved.meta["world"] == "eldoria" and saved.world_text == imported.read_text()


@pytest.mark.parametrize(("name", "hint"), [("../escape", "Invalid campaign name"),
                                            ("", "it is empty"),
                                            ("old", "already exists")])
async def test_title_screen_refuses_bad_or_taken_names_in_one_line(settings, name, hint):
    make_campaign(settings, "old")
    app = make_app(settings, None, ScriptedNarrator())
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#new-name", Input).value = name
        await pilot.pause()
        await pilot.click("#new-start")
        await pilot.pause()
        message = str(app.screen.query_one("#title-message").render())
        assert hint in message and "\n" not in message
        assert isinstance(app.screen, TitleScreen)


async def test_title_screen_lists_saves_and_continues_one(settings):
    make_campaign(settings, "older", "lanternsea", [("sail", "Waves.")],
                  updated="2026-11-01T09:30:00+00:00")
    make_campaign(settings, "newer", "emberfall", [("look", "A cold forge."), ("wait", "Snow.")],
                  updated="2026-11-20T14:02:00+00:00")
    app = make_app(settings, None, ScriptedNarrator())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#saves", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert rows == [["newer", "emberfall", "2", "2026-11-20 14:02"],
                        ["older", "lanternsea", "1", "2026-11-01 09:30"]]
        table.focus()
        await pilot.press("down", "enter")
        await game_ready(pilot)
        assert app.screen.campaign_name == "older"
        assert narrations(app)[-1] == "Waves."


async def test_title_screen_deletes_only_after_confirmation(settings):
    make_campaign(settings, "doomed", turns=[("look", "Dust.")])
    app = make_app(settings, None, ScriptedNarrator())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#delete")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert (settings.saves_dir / "doomed").exists()
        await pilot.click("#delete")
        await pilot.press("y")
        await pilot.pause()
        assert not (settings.saves_dir / "doomed").exists()
        assert "Deleted doomed" in str(app.screen.query_one("#title-message").render())
        assert app.screen.query_one("#saves", DataTable).row_count == 0


async def test_title_screen_marks_a_campaign_open_in_another_process(settings):
    make_campaign(settings, "busy", turns=[("look", "Dust.")])
    holder = subprocess.Popen(  # another storyteller holding the campaign, as a game does
        [sys.executable, "-c", "import sys, time; from storyteller.storage.lock import "
         "hold_campaign; lock = hold_campaign(sys.argv[1]); print('held', flush=True); "
         "time.sleep(600)", str(settings.saves_dir / "busy")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        app = make_app(settings, None, ScriptedNarrator())
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#saves", DataTable)
            where = f"pid {holder.pid} on {socket.gethostname()}"
            assert table.get_row_at(0)[0] == f"busy (open elsewhere: {where})"
            table.focus()
            await pilot.press("enter")
            assert isinstance(app.screen, TitleScreen)  # not continued
            assert str(app.screen.query_one("#title-message").render()) == (
                f"Campaign 'busy' is open in another storyteller ({where}): close it there, "
                "or wait.")
    finally:
        holder.kill()
        holder.wait()


async def test_title_screen_lists_a_corrupt_save_instead_of_crashing(settings):
    (settings.saves_dir / "broken").mkdir(parents=True)
    (settings.saves_dir / "broken" / "campaign.json").write_text("{oops")
    app = make_app(settings, None, ScriptedNarrator())
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#saves", DataTable)
        assert table.get_row_at(0)[:2] == ["broken", "(unreadable: delete or repair)"]
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.screen.query(".error")))
        assert "corrupt" in str(app.screen.query_one(".error", Static).render())


# -- game screen: input line ------------------------------------------------------

async def test_up_and_down_walk_the_input_history(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "look around")
        await play_and_wait(pilot, "open the door")
        action = app.screen.query_one("#action", ActionInput)
        await pilot.press("up")
        assert action.value == "open the door"
        await pilot.press("up", "up")
        assert action.value == "look around"
        await pilot.press("down")
        assert action.value == "open the door"
        await pilot.press("down")
        assert action.value == ""


async def test_tab_completes_commands_from_the_registry(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        action = app.screen.query_one("#action", ActionInput)
        action.focus()
        await pilot.press("/", "r", "e", "tab")
        assert action.value == "/remember"
        await pilot.press("tab")
        assert action.value == "/retry"
        await pilot.press("tab")
        assert action.value == "/remember"
        action.value = "/ins"
        await pilot.press("tab")
        assert action.value == "/inspect"
        assert set(COMMANDS) <= set(action.commands)


async def test_player_actions_are_distinct_from_narration(settings):
    app = game_app(settings, replies=["A crow lands on the anvil."])
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "whistle")
        assert actions(app) == ["> whistle"]
        assert narrations(app)[-1] == "A crow lands on the anvil."
        assert "turn 2" in status(app) and "autosaved" in status(app)
        assert "ctx" in status(app) and "/2048" in status(app)


# -- commands and keys -------------------------------------------------------------

async def test_undo_by_command_and_by_ctrl_z(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "look")
        await play_and_wait(pilot, "listen")
        await play_and_wait(pilot, "/undo")
        assert actions(app) == ["> look"]
        await pilot.press("ctrl+z")
        await wait_until(pilot, lambda: not app.screen.narrating)
        await pilot.pause()
        assert actions(app) == []
        assert "Turn 1 taken back." in notes(app)
    assert Campaign.load(settings.saves_dir, "quest").turns == []


async def test_retry_tells_the_last_turn_again(settings):
    app = game_app(settings, replies=["First telling.", "Second telling."])
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "knock")
        await play_and_wait(pilot, "/retry")
        assert actions(app) == ["> knock"]
        assert narrations(app)[-1] == "Second telling."
    assert [t.output for t in Campaign.load(settings.saves_dir, "quest").turns] == [
        "Second telling."]


async def test_edit_changes_the_last_action_and_tells_it_again(settings):
    app = game_app(settings, replies=["You knock.", "You kick the door in."])
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "knock")
        await play(pilot, "/edit")  # alone: the last action comes back to be changed
        await pilot.pause()
        assert app.screen.query_one("#action", Input).value == "/edit knock"
        await play_and_wait(pilot, "/edit kick the door")
        assert actions(app) == ["> kick the door"]
        assert narrations(app)[-1] == "You kick the door in."
    turns = Campaign.load(settings.saves_dir, "quest").turns
    assert [(t.number, t.input) for t in turns] == [(1, "kick the door")]


async def test_edit_before_any_turn_says_so(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "/edit")
        assert notes(app)[-1].startswith("Usage: /edit NEW ACTION")
        await play_and_wait(pilot, "/edit look")
        assert notes(app)[-1] == "Nothing to edit yet: type an action first."


@pytest.mark.parametrize(("line", "hint"), [
    ("/dance", "Unknown command /dance; type /help for the commands."),
    ("/undo twice", "/undo takes no arguments; type /help for the commands."),
    ("/save", "Every turn is saved as you play. /save NAME keeps a checkpoint"),
    ("/save ../x", "Invalid checkpoint name '../x'"),
    ("/load chapter-1", "No checkpoint named 'chapter-1'"),
    ("/export pdf", "Usage: /export [md|json|log|sillytavern]"),
    ("/remember", "Usage: /remember"),
    ("/forget no-such-id", "No memory with id 'no-such-id'"),
])
async def test_unknown_commands_and_bad_arguments_get_a_one_line_hint(settings, line, hint):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, line)
        assert notes(app)[-1].startswith(hint)
        assert "\n" not in notes(app)[-1]
        assert actions(app) == []


async def test_engine_commands_added_later_are_passed_through(settings, monkeypatch):
    """When /save joins the registry, the UI hands it to the engine instead of the hint."""
    def save(context):
        return Reply(message=f"Checkpoint {context.argument} kept.")

    monkeypatch.setitem(COMMANDS, "/save", Command("/save", "/save NAME", "keep", "required",
                                                   save))
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "/save chapter-1")
        assert notes(app)[-1] == "Checkpoint chapter-1 kept."


async def test_help_by_f1_and_by_command_lists_keys_and_every_command(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-commands").render())
        for name in ("/undo", "/retry", "/edit", "/save", "/load", "/export", "/memory",
                     "/remember", "/forget", "/inspect", "/settings", "/quit", "/theme"):
            assert name in text
        assert "Ctrl+Z" in str(app.screen.query_one("#help-keys").render())
        await pilot.press("escape")
        assert isinstance(app.screen, GameScreen)
        await play(pilot, "/help")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_theme_switches_by_key_and_by_command(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        assert app.theme == DARK_THEME
        await pilot.press("ctrl+t")
        assert app.theme == LIGHT_THEME
        await play(pilot, "/theme")
        await pilot.pause()
        assert app.theme == DARK_THEME


async def test_quit_by_command(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play(pilot, "/quit")
        await wait_until(pilot, lambda: not app.is_running)


async def test_quit_by_ctrl_q(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running)


async def test_a_narrator_failure_is_a_readable_message_and_keeps_the_action(settings):
    app = game_app(settings, replies=[" "])  # the model answers nothing, every time
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "shout")
        assert app.screen.query_one("#action", Input).value == "shout"
        assert "failed, not saved" in status(app)


# -- side panel --------------------------------------------------------------------

async def test_side_panel_shows_memory_by_kind_and_follows_changes(settings):
    """The panel shows the world's lore at once, and notes the background takes after a
    turn as soon as they are written (told by a message, not a poll)."""
    fact = {"kind": "character", "name": "Tobias Wren", "aliases": [], "importance": 6,
            "text": "Tobias Wren rows the ferry across the cold river."}
    slow_notes = ScriptedNarrator(replies=["Tobias Wren waves from his ferry.",
                                           json.dumps({"facts": [fact]})], delay=0.05)
    app = make_app(settings.model_copy(update={"extractor_model": "auto"}), "quest", slow_notes)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)

        def tab(name):
            return str(app.screen.query_one(f"#tab-{name} .panel-entries").render())

        assert "Maren Holt" in tab("characters") and "Jory Fenn" in tab("characters")
        assert "the great forge" in tab("locations")
        assert "the Ember Stone" in tab("items")
        assert "★ the first snow" in tab("plot")  # pinned in the world file
        await play_and_wait(pilot, "hail the ferry")
        assert "Tobias Wren" not in tab("characters")  # its notes are still being taken
        await wait_until(pilot, lambda: "Tobias Wren" in tab("characters"))


async def test_side_panel_hides_when_narrow(settings):
    app = game_app(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await game_ready(pilot)
        panel = app.screen.query_one(SidePanel)
        assert not panel.display
        await pilot.press("ctrl+b")
        assert panel.display


# -- memory browser ------------------------------------------------------------------

async def open_browser(pilot, how="f2"):
    if how == "f2":
        await pilot.press("f2")
    else:
        await play(pilot, how)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, MemoryBrowser))
    await pilot.pause()


def listed(app):
    options = app.screen.query_one("#memory-entries", OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_memory_browser_searches_and_views(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await open_browser(pilot, "/memory the stone")
        assert "the Ember Stone" in listed(app)[0]  # named in the search: first
        assert "fist-sized red gem" in app.screen.query_one("#memory-text", TextArea).text
        assert "item · the Ember Stone" in str(app.screen.query_one("#memory-meta").render())
        search = app.screen.query_one("#memory-search", Input)
        search.value = "the peddler"
        await pilot.pause()
        assert "Jory Fenn" in listed(app)[0]
        await pilot.press("escape")
        assert isinstance(app.screen, GameScreen)


async def test_memory_browser_edits_pins_and_deletes_in_the_store(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        memory = app.screen.game.memory
        count = len(memory.entries())
        await open_browser(pilot)
        assert "the first snow" in listed(app)[0]  # pinned first
        app.screen.query_one("#memory-entries", OptionList).highlighted = next(
            i for i, label in enumerate(listed(app)) if "Elder Corwin" in label)
        await pilot.pause()
        corwin = "character-elder-corwin"
        app.screen.query_one("#memory-text", TextArea).text = "Elder Corwin lies."
        await pilot.press("ctrl+s")
        assert memory.state.entries[corwin].text == "Elder Corwin lies."
        await pilot.press("ctrl+o")
        assert memory.state.entries[corwin].pinned
        assert "Unpin" in str(app.screen.query_one("#memory-pin").label)
        app.screen.query_one("#memory-text", TextArea).text = "   "
        await pilot.press("ctrl+s")
        assert "needs some text" in str(app.screen.query_one("#memory-message").render())
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert len(memory.entries()) == count
        await pilot.press("ctrl+d")
        await pilot.press("y")
        await pilot.pause()
        assert corwin not in memory.state.entries
        assert len(listed(app)) == count - 1
        await pilot.press("escape")
        await pilot.pause()
        panel = str(app.screen.query_one("#tab-characters .panel-entries").render())
        assert "Elder Corwin" not in panel


# -- prompt inspector ------------------------------------------------------------------

async def test_inspector_before_any_turn_says_what_to_do(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await pilot.press("f3")
        assert isinstance(app.screen, PromptInspector)
        assert "play a turn" in str(app.screen.query_one(".note").render())
        await pilot.press("escape")
        assert isinstance(app.screen, GameScreen)


async def test_inspector_shows_each_section_the_bar_and_what_was_dropped(settings):
    # A small context: after a few turns, something no longer fits.
    app = game_app(settings, n_ctx=300)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        for number in range(6):
            await play_and_wait(pilot, f"walk north {number}")
        await play(pilot, "/inspect")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptInspector))
        trace = app.screen.trace
        head = str(app.screen.query_one("#inspector-head").render())
        assert f"Turn 6 · prompt {trace.prompt_tokens}" in head and "of 300 tokens" in head
        cache = str(app.screen.query_one("#inspector-cache").render())
        # the scripted narrator keeps no prompt cache: every token is evaluated
        assert f"0 tokens reused from the cache, {trace.prompt_tokens} evaluated" in cache
        titles = [str(c.title) for c in app.screen.query(".inspector-section")]
        assert [t.split(" · ")[0] for t in titles] == [s["name"] for s in trace.sections]
        cut = next(s for s in trace.sections if s["dropped"])
        assert f"{cut['name']} · {cut['tokens']} tokens · {cut['dropped']} dropped" in titles
        dropped = str(app.screen.query_one("#inspector-dropped").render())
        assert dropped.startswith("Dropped to fit: ") and f"of {cut['name']}" in dropped
        texts = [str(s.render()) for s in app.screen.query(".inspector-section Static")]
        assert any("walk north 5" in text for text in texts)  # the input section
        bar = app.screen.query_one("#inspector-bar").render()
        assert "system" in bar.plain and "free" in bar.plain


# -- settings ------------------------------------------------------------------------

async def test_settings_are_saved_with_the_campaign_and_applied(settings):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await pilot.press("f4")
        assert isinstance(app.screen, SettingsScreen)
        app.screen.query_one("#setting-temperature", Input).value = "0.3"
        app.screen.query_one("#setting-max_tokens", Input).value = "64"
        app.screen.query_one("#setting-content_log_level", Select).value = 2
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, GameScreen)
        assert app.screen.game.settings.temperature == 0.3
        assert app.screen.game.settings.max_tokens == 64
        await play_and_wait(pilot, "look")
        assert app.screen.last_reply.trace.max_tokens == 64
    meta = json.loads((settings.saves_dir / "quest" / "campaign.json").read_text())
    assert meta["settings"]["temperature"] == 0.3 and meta["settings"]["content_log_level"] == 2
    again = game_app(settings)
    async with again.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        assert again.screen.game.settings.temperature == 0.3
        await play(pilot, "/settings")
        await pilot.pause()
        assert again.screen.query_one("#setting-content_log_level", Select).value == 2


@pytest.mark.parametrize(("field", "value", "error"), [
    ("temperature", "hot", "temperature: Input should be a valid number"),
    ("top_p", "0", "top p: Input should be greater than 0"),
    ("max_tokens", "1500", "max tokens: at most 1023 with a 2048-token context"),
])
async def test_bad_settings_are_refused_in_one_line_and_change_nothing(settings, field, value,
                                                                         error):
    app = game_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play(pilot, "/settings")
        await pilot.pause()
        app.screen.query_one(f"#setting-{field}", Input).value = value
        await pilot.click("#settings-save")
        message = str(app.screen.query_one("#settings-error").render())
        assert message.startswith(error) and "Nothing was changed" in message
        await pilot.press("escape")
        assert app.screen.game.settings.temperature == 0.8
    saved = json.loads((settings.saves_dir / "quest" / "campaign.json").read_text())
    assert saved["settings"]["temperature"] == 0.8  # what was in force, unchanged


async def test_quitting_mid_narration_stops_it_and_saves_nothing_half_told(settings):
    app = game_app(settings, replies=[" ".join(["slowly"] * 200)], delay=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play(pilot, "climb the tower")
        await wait_until(pilot, lambda: "slowly" in (narrations(app)[-1] or ""))
        screen = app.screen
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running)
    assert screen.cancel_event.is_set()
    assert screen.game.narrator.calls == 1
    assert Campaign.load(settings.saves_dir, "quest").turns == []


async def test_title_screen_without_any_world_says_where_to_add_one(settings, tmp_path):
    (tmp_path / "prompts" / "worlds").mkdir(parents=True)
    settings.prompts_dir = tmp_path / "prompts"
    app = make_app(settings, None, ScriptedNarrator())
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#new-name", Input).value = "quest"
        await pilot.pause()
        await pilot.click("#new-start")
        await pilot.pause()
        assert "No world to start in" in str(app.screen.query_one("#title-message").render())
        assert isinstance(app.screen, TitleScreen)


# -- found playing in a real terminal ----------------------------------------------------

async def test_the_story_follows_new_turns_after_a_scroll_at_the_bottom(settings):
    replies = [f"{sentence} " * 10 for sentence in (
        "The tide climbs the drowned steps.", "Gulls wheel over the tower.",
        "A lantern flickers in the chapel.", "Pell ties the boat to a rusted ring.")]
    app = game_app(settings, replies=replies)
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        for action in ("row", "climb", "wait"):
            await play_and_wait(pilot, action)
        story = app.screen.query_one("#story")
        assert story.max_scroll_y > 0 and story.scroll_y == story.max_scroll_y
        story.focus()
        await pilot.press("down")  # already at the bottom: Textual stops following
        await play_and_wait(pilot, "listen")
        await pilot.pause(0.2)
        assert story.scroll_y == story.max_scroll_y  # the new turn is in view


def test_memory_browser_marks_the_story_notes_apart_from_the_lore():
    from storyteller.memory.entries import MemoryEntry
    from storyteller.tui.memory_browser import entry_option, entry_origin

    note = MemoryEntry(id="character-maren-holt-notes", kind="character", name="Maren Holt",
                       text="Maren Holt lent you a hammer.", turn=3, source="notes")
    lore = MemoryEntry(id="character-maren-holt", kind="character", name="Maren Holt",
                       text="Maren Holt is the blacksmith.", source="world")
    assert str(entry_option(note).prompt).endswith("Maren Holt  ✎ note, turn 3")
    assert "✎" not in str(entry_option(lore).prompt) and entry_origin(lore) == ""
    assert entry_origin(note) == " · a note taken at turn 3 (/forget notes drops every note)"


async def test_memory_browser_on_the_story_memory(settings):
    """The real story memory: the browser keeps its place after a pin, names story
    passages and pins by their text, and refuses to pin a passage in one line."""
    app = make_app(settings, "quest", ScriptedNarrator(replies=[
        "Maren Holt stares at the cold forge and swears softly."]))
    async with app.run_test(size=SIZE) as pilot:
        await game_ready(pilot)
        await play_and_wait(pilot, "look at the forge")
        await play_and_wait(pilot, "/remember Maren owes me a sword")
        await open_browser(pilot)
        options = app.screen.query_one("#memory-entries", OptionList)
        options.highlighted = 2
        await pilot.pause()
        chosen = app.screen.selected.id
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.screen.selected.id == chosen and app.screen.selected.pinned
        assert any("Maren owes me a sword" in label for label in listed(app))

        app.screen.query_one("#memory-search", Input).value = "the cold forge"
        await pilot.pause()
        passage = next(i for i, label in enumerate(listed(app)) if "event" in label)
        assert "Turn 1. The player: look" in listed(app)[passage]
        options.highlighted = passage
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, MemoryBrowser)
        assert "story passage cannot be edited or pinned" in str(
            app.screen.query_one("#memory-message").render())
