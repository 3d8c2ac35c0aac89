"""SVG snapshots of the main screens (pytest-textual-snapshot). Everything that could
vary is fixed: scripted narration, campaign timestamps, no models folder, the decoding
speed and first word's time, and no blinking cursors. Regenerate with
`pytest tests/tui/test_tui_snapshots.py --snapshot-update` and look at the SVGs before
committing them."""

import pytest
from textual.widgets import Input, TextArea
from tui_support import game_ready, make_campaign, play_and_wait, wait_until

from storyteller.engine.trace import TurnTrace
from storyteller.narrator.scripted import ScriptedNarrator
from storyteller.tui.app import make_app
from storyteller.tui.inspector import PromptInspector
from storyteller.tui.memory_browser import MemoryBrowser

EARLIER_TURNS = [
    ("ask Maren what happened to the stone",
     "Maren wipes her hands on her apron. \"Someone came in the night. The stone was in "
     "the forge at dusk and gone by the second bell.\""),
    ("look for tracks around the forge",
     "In the soft ash by the door you find a boot print, narrow and long, pointing toward "
     "the mountain road."),
]
NEXT_NARRATION = ("Old Tomas leans on his crook. \"A light, stranger. Up on the road, past "
                  "midnight, moving fast and low, like someone carrying a coal.\"")


@pytest.fixture(autouse=True)
def steady(settings, monkeypatch, tmp_path):
    """The decoding speed and the first word's time differ every run; no user model files
    show up in the list."""
    monkeypatch.setattr(TurnTrace, "tokens_per_second", property(lambda trace: 97.0))
    monkeypatch.setattr(TurnTrace, "ttft_seconds", property(lambda trace: 0.31))
    settings.models_dir = tmp_path / "no-models"


def still_cursors(app) -> None:
    for widget in [*app.screen.query(Input), *app.screen.query(TextArea)]:
        widget.cursor_blink = False


def story_app(settings, theme=None, key=None, screen=None):
    """The game mid-story; with `key`, then the `screen` that key opens."""
    make_campaign(settings, "emberfall-run", turns=EARLIER_TURNS,
                  updated="2026-11-20T14:02:00+00:00")
    app = make_app(settings, "emberfall-run", ScriptedNarrator(replies=[NEXT_NARRATION]))

    async def mid_story(pilot):
        await game_ready(pilot)
        if theme:
            pilot.app.theme = theme
        await play_and_wait(pilot, "ask the shepherd what he saw")
        if key:
            await pilot.press(key)
            await wait_until(pilot, lambda: isinstance(pilot.app.screen, screen))
            await pilot.pause()
        still_cursors(pilot.app)

    return app, mid_story


def test_title_screen(snap_compare, settings):
    make_campaign(settings, "emberfall-run", turns=EARLIER_TURNS,
                  updated="2026-11-20T14:02:00+00:00")
    make_campaign(settings, "night-sail", "lanternsea", updated="2026-11-02T21:15:00+00:00")
    app = make_app(settings, None, ScriptedNarrator())

    async def ready(pilot):
        await pilot.pause()
        still_cursors(pilot.app)

    assert snap_compare(app, terminal_size=(100, 30), run_before=ready)


def test_title_screen_small(snap_compare, settings):
    make_campaign(settings, "emberfall-run", turns=EARLIER_TURNS,
                  updated="2026-11-20T14:02:00+00:00")
    app = make_app(settings, None, ScriptedNarrator())

    async def ready(pilot):
        await pilot.pause()
        still_cursors(pilot.app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (200, 60)])
def test_game_screen_mid_story(snap_compare, settings, size):
    app, mid_story = story_app(settings)
    assert snap_compare(app, terminal_size=size, run_before=mid_story)


def test_game_screen_light_theme(snap_compare, settings):
    app, mid_story = story_app(settings, theme="textual-light")
    assert snap_compare(app, terminal_size=(100, 30), run_before=mid_story)


def test_memory_browser(snap_compare, settings):
    app, browse = story_app(settings, key="f2", screen=MemoryBrowser)
    assert snap_compare(app, terminal_size=(100, 30), run_before=browse)


def test_prompt_inspector(snap_compare, settings):
    app, inspect = story_app(settings, key="f3", screen=PromptInspector)
    assert snap_compare(app, terminal_size=(100, 30), run_before=inspect)
