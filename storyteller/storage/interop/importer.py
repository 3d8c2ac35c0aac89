"""Import a lorebook or a character card as a world (`storyteller worlds import FILE`).

The format is told by the content, not the file name: a PNG holds a card (or a NovelAI
lorebook) in a text chunk; a JSON object is a card, a NovelAI lorebook, a SillyTavern
World Info file or a card's lorebook on its own. Files are read in bounded memory: a JSON
file up to MAX_JSON_BYTES, a PNG up to MAX_PNG_BYTES (its image data is never read)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from storyteller.errors import SaveError, StorytellerError, WorldError
from storyteller.storage.durable import write_atomic
from storyteller.storage.interop.draft import (
    FormatProblem,
    WorldDraft,
    clean_text,
    one_line,
    world_toml,
)
from storyteller.storage.interop.novelai import is_novelai, novelai_draft
from storyteller.storage.interop.png import PNG_SIGNATURE, png_texts
from storyteller.storage.interop.sillytavern import (
    card_draft,
    character_book_draft,
    is_card,
    world_info_draft,
)
from storyteller.storage.names import validate_name
from storyteller.storage.worlds import World

MAX_JSON_BYTES = 16 * 2**20  # the largest shared lorebooks are a few MB
MAX_PNG_BYTES = 64 * 2**20
CARD_CHUNKS = ("ccv3", "chara")  # a V3 card may keep a V2 copy in chara: the V3 one wins
NOVELAI_CHUNK = "naidata"  # a NovelAI lorebook saved as a PNG
MAX_SLUG = 48


def import_world(path: Path, worlds_dir: Path, name: str | None = None,
                 force: bool = False, reserved: Collection[str] = ()) -> Path:
    """Convert the file and write it as <worlds_dir>/<name>.toml (by default name is a
    slug of the world's title); the path written. The world is loaded back, lore and
    all, before it is written, and written atomically; an existing world is replaced
    only with force, a reserved name (a shipped world's) never. Any problem raises
    WorldError (one line) and writes nothing."""
    path, worlds_dir = Path(path), Path(worlds_dir)
    try:
        draft = read_draft(path)
        text = world_toml(draft, path.name)
    except FormatProblem as problem:
        raise WorldError(f"Cannot import {one_line(path)}: {problem}.") from None
    except RecursionError:
        raise WorldError(f"Cannot import {one_line(path)}: it is nested too deeply.") from None
    world_name = _world_name(name, draft.title)
    _check_loads(world_name, text, path)
    if world_name in reserved:
        raise WorldError(f"{world_name!r} is the name of a world that ships with storyteller; "
                         "import with another --name.")
    target = worlds_dir / f"{world_name}.toml"
    if target.exists() and not force:
        raise WorldError(f"A world named {world_name!r} is already in {one_line(worlds_dir)}; "
                         "import with another --name, or with --force to replace it.")
    try:
        worlds_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text)
    except OSError as error:
        raise WorldError(f"Cannot write the world {one_line(target)}: "
                         f"{error.strerror or error}.") from None
    return target


def read_draft(path: Path) -> WorldDraft:
    """The world draft of a file to import."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            is_png = file.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
            _within(size, MAX_PNG_BYTES if is_png else MAX_JSON_BYTES)
            file.seek(0)
            if is_png:
                return _png_draft(file, path.stem)
            raw = file.read(MAX_JSON_BYTES + 1)
    except OSError as error:
        raise FormatProblem(f"it cannot be read ({error.strerror or error})") from None
    _within(len(raw), MAX_JSON_BYTES)  # it grew while we looked
    return draft_from_json(_json(raw, "it is neither a PNG file nor valid JSON"), path.stem)


def _within(size: int, limit: int) -> None:
    if size > limit:
        raise FormatProblem(f"it is {size / 2**20:.0f} MB, more than the "
                            f"{limit // 2**20} MB a file of its kind may have")


def _png_draft(file: BinaryIO, title: str) -> WorldDraft:
    texts = png_texts(file)
    key = next((key for key in (*CARD_CHUNKS, NOVELAI_CHUNK) if key in texts), None)
    if key is None:
        raise FormatProblem("the PNG holds no character card (no 'ccv3' or 'chara' text "
                            "chunk)")
    try:
        raw = base64.b64decode("".join(texts[key].split()), validate=True)
    except binascii.Error:
        raise FormatProblem(f"its '{key}' chunk is not valid base64") from None
    return draft_from_json(_json(raw, f"its '{key}' chunk is not valid JSON"), title)


def _json(raw: bytes, problem: str) -> object:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FormatProblem(f"{problem} (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise FormatProblem(f"{problem} ({error.msg} at line {error.lineno})") from None


def draft_from_json(data: object, title: str) -> WorldDraft:
    """A card, a NovelAI lorebook, a World Info file or a character book, by its shape;
    a lorebook's title is its `name`, else the file's."""
    if not isinstance(data, dict):
        raise FormatProblem("its JSON is not an object")
    title = one_line(clean_text(data.get("name"))) or title
    entries = data.get("entries")
    if is_card(data):
        return card_draft(data)
    if is_novelai(data):
        return novelai_draft(data, title)
    if isinstance(entries, dict):
        return world_info_draft(data, title)
    if isinstance(entries, list):
        return character_book_draft(data, title)
    raise FormatProblem("its JSON is not a SillyTavern World Info file, character card or "
                        "character book, nor a NovelAI lorebook")


def _world_name(name: str | None, title: str) -> str:
    if name is None:
        slug = re.sub(r"\W+", "-", title.casefold()).strip("-_")
        name = slug[:MAX_SLUG].strip("-_") or "imported-world"
    try:
        return validate_name(name, "world")
    except SaveError as error:
        raise WorldError(str(error)) from None


def _check_loads(name: str, text: str, path: Path) -> None:
    """An imported world always loads: its TOML is read back as a world before anything
    is written."""
    try:
        World.from_toml(name, text, f"{name}.toml")
    except (StorytellerError, ValueError) as error:
        raise WorldError(f"Cannot import {one_line(path)}: the converted world does not "
                         f"load ({one_line(error)}).") from None
