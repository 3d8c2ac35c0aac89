"""The terminal app, driven by Textual's Pilot. The scripted narrator stands in for the
model in pure UI tests; one test plays with the real embedded model."""

import threading

import pytest
from textual.widgets import DataTable, Input, LoadingIndicator, Markdown, Static
from tui_support import actions, narrations, play, play_and_wait, status, wait_until

from storyteller.campaign import Campaign
from storyteller.engine.session import open_game
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.tui import game_screen
from storyteller.tui.app import make_app
from storyteller.tui.game_screen import TurnView
from storyteller.tui.inspector import PromptInspector
from storyteller.tui.title_screen import TitleScreen


async def test_typing_an_action_streams_narration_into_the_story(settings):
    narrator = ScriptedNarrator(replies=["The well is deep and smells of moss."])
    app = make_app(settings, "quest", narrator)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.game is not None)
        assert "Maren Holt" in narrations(app)[0]  # the world's opening scene
        await play(pilot, "look into the well")
        await wait_until(pilot, lambda: not app.screen.narrating)
        assert narrations(app)[-1] == "The well is deep and smells of moss."
        actions = [str(s.render()) for s in app.screen.query(".action")]
        assert actions == ["> look into the well"]
        assert "scripted-test-narrator" in status(app) and "tok/s" in status(app)
    assert Campaign.load(settings.saves_dir, "quest").turns[0].input == "look into the well"


async def test_the_screen_shows_loading_before_the_model_is_ready(settings, monkeypatch):
    model_loaded = threading.Event()

    def slow_open_game(*args):
        model_loaded.wait(timeout=30)
        return open_game(*args)

    monkeypatch.setattr(game_screen, "open_game", slow_open_game)
    app = make_app(settings, "quest", ScriptedNarrator())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        assert "Loading the narrator" in status(app)
        assert app.screen.query(LoadingIndicator)
        model_loaded.set()
        await wait_until(pilot, lambda: app.screen.game is not None)
        assert "ready" in status(app)


async def test_escape_cancels_and_puts_the_action_back(settings):
    narrator = ScriptedNarrator(replies=[" ".join(["slowly"] * 200)], delay=0.1)
    app = make_app(settings, "quest", narrator)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.game is not None)
        await play(pilot, "climb the tower")
        await wait_until(pilot, lambda: "slowly" in (narrations(app)[-1] or ""))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.screen.narrating)
        assert app.screen.query_one("#action", Input).value == "climb the tower"
        assert len(app.screen.query(TurnView)) == 1  # only the opening
        assert "not saved" in status(app)
    assert Campaign.load(settings.saves_dir, "quest").turns == []


async def test_commands_in_the_tui(settings):
    app = make_app(settings, "quest", ScriptedNarrator())
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.game is not None)
        await play(pilot, "look")
        await wait_until(pilot, lambda: not app.screen.narrating)
        await play(pilot, "/retry")
        await wait_until(pilot, lambda: not app.screen.narrating)
        assert len(app.screen.query(TurnView)) == 2
        await play(pilot, "/undo")
        await wait_until(pilot, lambda: not app.screen.narrating)
        assert len(app.screen.query(TurnView)) == 1
        await play(pilot, "/quit")
        await wait_until(pilot, lambda: not app.is_running)


async def test_a_campaign_that_cannot_load_shows_a_readable_error(settings):
    settings.saves_dir.mkdir(parents=True)
    (settings.saves_dir / "broken").mkdir()
    (settings.saves_dir / "broken" / "campaign.json").write_text("{oops")
    app = make_app(settings, "broken", ScriptedNarrator())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: bool(app.screen.query(".error")))
        assert "corrupt" in str(app.screen.query_one(".error", Static).render())
        assert app.screen.query_one("#action", Input).disabled


async def test_resumed_campaign_shows_earlier_turns(settings):
    first = make_app(settings, "quest", ScriptedNarrator(replies=["A raven watches you."]))
    async with first.run_test() as pilot:
        await wait_until(pilot, lambda: first.screen.game is not None)
        await play(pilot, "wave at the raven")
        await wait_until(pilot, lambda: not first.screen.narrating)
    second = make_app(settings, "quest", ScriptedNarrator())
    async with second.run_test() as pilot:
        await wait_until(pilot, lambda: second.screen.game is not None)
        assert narrations(second)[-1] == "A raven watches you."


async def test_checkpoints_in_the_tui_redraw_the_story_and_show_the_save_state(settings):
    narrator = ScriptedNarrator(replies=["Left it is.", "Right it is.", "Onwards."])
    app = make_app(settings, "quest", narrator)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.game is not None)
        for line in ("go left", "/save fork", "go on"):
            await play(pilot, line)
            await wait_until(pilot, lambda: not app.screen.narrating)
        assert status(app).endswith("saved")
        assert narrations(app)[1:] == ["Left it is.", "Right it is."]
        await play(pilot, "/load fork")
        await wait_until(pilot, lambda: not app.screen.narrating)
        assert narrations(app)[1:] == ["Left it is."]
        assert "before-load" in str(app.screen.query(".note").last().render())


@pytest.mark.model
async def test_real_model_narrates_in_the_tui(settings, real_narrator):
    app = make_app(settings, "real", real_narrator)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.game is not None)
        await play(pilot, "ask Maren about the Ember Stone")
        await wait_until(pilot, lambda: not app.screen.narrating, timeout=120)
        text = narrations(app)[-1]
        assert text.strip()
        assert app.screen.query(Markdown).last().source == text
    turns = Campaign.load(settings.saves_dir, "real").turns
    assert turns[0].output == text


MODEL_WAIT = 300  # seconds: generous, the test machine's cores are shared


@pytest.mark.model
async def test_real_model_session_from_the_title_screen(settings, real_narrator):
    """Start from the title screen, play, retry, inspect the prompt, undo, quit, and
    continue the campaign from the title screen again."""
    settings.max_tokens = 24  # short narrations: this test is about the screens
    app = make_app(settings, None, real_narrator)
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.query_one("#new-name", Input).value = "real-run"
        await pilot.pause()
        await pilot.click("#new-start")
        await wait_until(pilot, lambda: getattr(app.screen, "game", None) is not None)
        for action in ("ask Maren about the Ember Stone", "follow the tracks"):
            await play_and_wait(pilot, action, MODEL_WAIT)
        await play_and_wait(pilot, "/retry", MODEL_WAIT)
        assert actions(app)[-1] == "> follow the tracks" and len(actions(app)) == 2
        assert narrations(app)[-1].strip()
        assert app.screen.game.campaign.turns[-1].output == narrations(app)[-1]
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptInspector))
        trace = app.screen.trace
        assert trace.model == real_narrator.model_id and trace.turn == 2
        tokens = {s["name"]: s["tokens"] for s in trace.sections}
        assert tokens["system"] > 0 and tokens["history"] > 0 and tokens["input"] > 0
        assert sum(tokens.values()) <= trace.prompt_tokens <= trace.n_ctx - trace.max_tokens
        head = str(app.screen.query_one("#inspector-head").render())
        assert f"prompt {trace.prompt_tokens}" in head
        await pilot.press("escape")
        await pilot.press("ctrl+z")
        await wait_until(pilot, lambda: not app.screen.narrating, MODEL_WAIT)
        await pilot.pause()
        assert actions(app) == ["> ask Maren about the Ember Stone"]
        await play(pilot, "/quit")
        await wait_until(pilot, lambda: not app.is_running)

    again = make_app(settings, None, real_narrator)
    async with again.run_test(size=(100, 30)) as pilot:
        assert isinstance(again.screen, TitleScreen)
        assert again.screen.query_one("#saves", DataTable).get_row_at(0)[:3] == [
            "real-run", "emberfall", "1"]
        again.screen.query_one("#saves", DataTable).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: getattr(again.screen, "game", None) is not None)
        await pilot.pause()
        assert len(narrations(again)) == 2  # the opening and the turn kept
        await play_and_wait(pilot, "walk to the mountain road", MODEL_WAIT)
        assert again.screen.game.campaign.turns[-1].number == 2
