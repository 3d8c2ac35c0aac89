"""test_tui with the real embedded model (moved from tests/tui/)."""

from support import MODEL_WAIT
from textual.widgets import DataTable, Input, Markdown
from tui_support import actions, narrations, play, play_and_wait, wait_until

from storyteller.storage.campaign import Campaign
from storyteller.tui.app import make_app
from storyteller.tui.inspector import PromptInspector
from storyteller.tui.title_screen import TitleScreen


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
        cache = str(app.screen.query_one("#inspector-cache").render())
        assert 0 < trace.evaluated_tokens < trace.prompt_tokens  # a retelling reuses
        assert (f"{trace.reused_tokens} tokens reused from the cache, "
                f"{trace.evaluated_tokens} evaluated") in cache
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
