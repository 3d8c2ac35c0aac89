"""Exports: the story as a readable Markdown file, as JSON or as a SillyTavern chat, and
the content log, written to saves/<campaign>/exports/. Exports are copies; the
transcript stays the original."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from storyteller.errors import SaveError
from storyteller.storage.campaign import EXPORTS_DIR, Campaign
from storyteller.storage.durable import read_jsonl, write_atomic
from storyteller.storage.interop.sillytavern import write_chat
from storyteller.storage.names import unused_path
from storyteller.storage.worlds import World
from storyteller.text import strip_control

EXPORT_FORMATS = ("md", "json", "log", "sillytavern")
EXPORT_SUFFIX = {"md": ".md", "json": ".json", "log": ".log.jsonl",
                 "sillytavern": ".sillytavern.jsonl"}
CHAT_USER_NAME = "You"  # the player, in a SillyTavern chat; the world's title speaks
JSON_EXPORT_VERSION = 1


def story_markdown(campaign: Campaign, world: World) -> str:
    lines = [f"# {strip_control(world.title)}", "",
             f"*A storyteller campaign: {campaign.name} · {len(campaign.turns)} turns · "
             f"started {campaign.meta.get('created', '?')}*", ""]
    if world.opening:
        lines += [strip_control(world.opening), ""]
    for turn in campaign.turns:
        lines += [f"> **{turn.number}.** {strip_control(turn.input)}", "",
                  strip_control(turn.output), ""]
    return "\n".join(lines)


def story_json(campaign: Campaign, world: World) -> str:
    story = {
        "format": "storyteller-story",
        "version": JSON_EXPORT_VERSION,
        "campaign": campaign.meta,
        "world": {"title": world.title, "setting": world.setting, "opening": world.opening},
        "turns": [turn.to_record() for turn in campaign.turns],
    }
    return json.dumps(story, indent=2, ensure_ascii=False) + "\n"


def story_chat(campaign: Campaign, world: World) -> str:
    """The story as a SillyTavern chat: the opening is the world's first message, then
    each turn is the player's message and the narration's."""
    return write_chat([(turn.input, turn.output) for turn in campaign.turns], world.opening,
                      CHAT_USER_NAME, world.title)


def content_log_jsonl(campaign: Campaign) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n"
                   for record in read_jsonl(campaign.content_log_path))


def export_campaign(campaign: Campaign, world: World, fmt: str) -> Path:
    """Write one export and return its path; a file name is never reused."""
    if fmt not in EXPORT_FORMATS:
        raise SaveError(f"Unknown export format {fmt!r}; use one of "
                            f"{', '.join(EXPORT_FORMATS)}.")
    render = {"md": story_markdown, "json": story_json, "sillytavern": story_chat,
              "log": lambda campaign, world: content_log_jsonl(campaign)}[fmt]
    text = render(campaign, world)
    folder = campaign.path / EXPORTS_DIR
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = unused_path(folder, f"{campaign.name}-{stamp}", EXPORT_SUFFIX[fmt])
    try:
        folder.mkdir(exist_ok=True)
        write_atomic(path, text)
    except OSError as error:
        raise SaveError(f"Cannot write {path}: {error.strerror}; the story itself is "
                            "safe, free some disk space and try again.") from None
    return path
