"""Helpers for driving the Textual app with Pilot in tests."""

from __future__ import annotations

import json
import threading

from storyteller.storage.campaign import Campaign
from storyteller.tui.game_screen import TurnView


async def wait_until(pilot, condition, timeout=30.0):
    waited = 0.0
    while not condition():
        await pilot.pause(0.05)
        waited += 0.05
        assert waited < timeout, "condition not reached in time"


def narrations(app):
    return [view.markdown.source for view in app.screen.query(TurnView)]


def actions(app):
    return [str(static.render()) for static in app.screen.query(".action")]


def notes(app):
    return [str(static.render()) for static in app.screen.query(".note")]


def status(app):
    return str(app.screen.query_one("#status").render())


async def play(pilot, text):
    """Type a line into the action input and press Enter."""
    from textual.widgets import Input

    await pilot.click("#action")
    pilot.app.screen.query_one("#action", Input).value = text
    await pilot.press("enter")


async def play_and_wait(pilot, text, timeout=30.0):
    await play(pilot, text)
    await wait_until(pilot, lambda: not pilot.app.screen.narrating, timeout)
    await pilot.pause()


async def game_ready(pilot):
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "game", None) is not None)
    await pilot.pause()


def make_campaign(settings, name, world="emberfall", turns=(), updated=None):
    """A campaign on disk with the given (input, output) turns and a fixed timestamp."""
    from storyteller.storage.durable import write_atomic
    from storyteller.storage.schema import CAMPAIGN_FILE
    from storyteller.storage.transcript import Turn
    from storyteller.storage.worlds import read_world_file

    campaign = Campaign.create(settings.saves_dir, name, world,
                               read_world_file(settings, world), "embedded")
    for number, (action, narration) in enumerate(turns, start=1):
        campaign.append_turn(Turn(number, action, narration, created="2026-11-20T10:00:00+00:00"))
    if updated:
        campaign.meta.update(created=updated, updated=updated)
        write_atomic(campaign.path / CAMPAIGN_FILE, json.dumps(campaign.meta))
    return campaign


class SlowLoadingScripted:
    """The scripted backend, loading slowly on purpose: registered under the name
    'scripted' (registry.BACKEND_FACTORIES), it holds every load until the test releases
    it, the way a big model keeps the player waiting."""

    def __init__(self):
        from storyteller.narrator.registry import BACKEND_FACTORIES

        self.load_scripted = BACKEND_FACTORIES["scripted"]
        self.release = threading.Event()
        self.loads = 0

    def __call__(self, settings, choice, n_ctx):
        self.loads += 1
        assert self.release.wait(timeout=120), "the test never let the narrator load"
        return self.load_scripted(settings, choice, n_ctx)
