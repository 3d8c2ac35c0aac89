"""The terminal app, driven by Textual's Pilot. The scripted narrator stands in for the
model in pure UI tests; one test plays with the real embedded model."""


from textual.widgets import Input, LoadingIndicator, Static
from tui_support import SlowLoadingScripted, actions, narrations, play, status, wait_until

from storyteller.narrator import registry
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.storage.campaign import Campaign
from storyteller.tui.app import make_app
from storyteller.tui.game_screen import GameScreen, TurnView


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
        assert "scripted" in status(app) and "tok/s" in status(app)
    assert Campaign.load(settings.saves_dir, "quest").turns[0].input == "look into the well"


async def test_after_start_the_opening_shows_before_a_slow_loading_narrator_is_ready(
        settings, monkeypatch):
    slow = SlowLoadingScripted()
    monkeypatch.setitem(registry.BACKEND_FACTORIES, "scripted", slow)
    settings.backend = "scripted"  # loaded by name, not injected: the app waits for it
    app = make_app(settings, None)
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.query_one("#new-name", Input).value = "quest"
        await pilot.pause()
        await pilot.click("#new-start")
        await wait_until(pilot, lambda: isinstance(app.screen, GameScreen)
                         and "Maren Holt" in "".join(narrations(app)))  # the opening
        assert app.screen.game is None and slow.loads == 1  # the narrator is still loading
        assert "Loading the narrator" in status(app)
        assert not app.screen.query(LoadingIndicator)
        await play(pilot, "look into the well")  # typing is accepted meanwhile
        assert app.screen.query_one("#action", Input).value == "look into the well"
        slow.release.set()
        await wait_until(pilot, lambda: app.screen.game is not None
                         and app.screen.game.campaign.turns and not app.screen.narrating)
        await pilot.pause()
        assert actions(app) == ["> look into the well"]  # it went once the narrator was up
        assert app.screen.query_one("#action", Input).value == ""
    assert Campaign.load(settings.saves_dir, "quest").turns[0].input == "look into the well"


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






