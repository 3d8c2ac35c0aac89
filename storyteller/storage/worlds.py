"""Worlds: the TOML files shipped in prompts/worlds/, the player's own in the worlds
folder (`storyteller worlds import` writes them there), and a campaign's world.toml.

A world has a title, a setting (the premise, in the system prompt), an opening scene
(and optional other `openings`), and lore: [[characters]], [[locations]], [[items]],
[[plot]] and general [[lore]] tables, each with a name, a text, optional aliases, an
importance (1-10) and a pinned flag. An entry may also carry secondary keys that gate
it the way SillyTavern's selective entries do (`selective`, `selective_logic`), and a
`placement` table kept for the record (an imported lorebook's insertion settings). The
story memory loads the lore when a campaign starts."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storyteller.config import Settings
from storyteller.errors import WorldError

LORE_TABLES = {"characters": "character", "locations": "location", "items": "item",
               "plot": "plot", "lore": "lore"}
MAX_LORE_NAME = 80
MAX_LORE_TEXT = 20000  # real lorebooks write entries of a few thousand characters
SelectiveLogic = Literal["AND ANY", "NOT ALL", "NOT ANY", "AND ALL"]
SELECTIVE_LOGICS: tuple[str, ...] = get_args(SelectiveLogic)


class LoreEntry(BaseModel):
    """One [[characters]] / [[locations]] / [[items]] / [[plot]] / [[lore]] table of a
    world file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=MAX_LORE_NAME)
    text: str = Field(min_length=1, max_length=MAX_LORE_TEXT)
    aliases: tuple[str, ...] = ()
    importance: int = Field(5, ge=1, le=10)
    pinned: bool = False
    secondary_keys: tuple[str, ...] = ()  # checked only when the entry is selective
    selective: bool = False
    selective_logic: SelectiveLogic = "AND ANY"
    placement: dict = {}  # for the record only: where another tool inserted the entry
    kind: str = ""  # filled from the table it came from


@dataclass(frozen=True)
class World:
    name: str
    title: str
    setting: str
    opening: str
    lore: tuple[LoreEntry, ...] = ()
    openings: tuple[str, ...] = ()  # other opening scenes to choose from

    @classmethod
    def from_toml(cls, name: str, text: str, origin: str) -> World:
        try:
            data = tomllib.loads(text)
            return cls(name, str(data["title"]), str(data["setting"]).strip(),
                       str(data.get("opening", "")).strip(), _read_lore(data, origin),
                       _read_openings(data, origin))
        except (tomllib.TOMLDecodeError, KeyError) as error:
            raise WorldError(f"World file {origin} is invalid ({error}); it needs "
                                "'title' and 'setting'.") from None


def _read_lore(data: dict, origin: str) -> tuple[LoreEntry, ...]:
    lore = []
    for table, kind in LORE_TABLES.items():
        for number, item in enumerate(data.get(table, []), start=1):
            try:
                if not isinstance(item, dict):
                    raise TypeError("use [[" + table + "]] tables")
                lore.append(LoreEntry(**{**item, "kind": kind}))
            except (ValidationError, TypeError) as error:
                problem = _first_problem(error)
                raise WorldError(f"World file {origin} is invalid ([[{table}]] number "
                                    f"{number}: {problem}); each entry needs a 'name' and "
                                    "a 'text'.") from None
    return tuple(lore)


def _read_openings(data: dict, origin: str) -> tuple[str, ...]:
    openings = data.get("openings", [])
    if not isinstance(openings, list) or not all(isinstance(o, str) for o in openings):
        raise WorldError(f"World file {origin} is invalid (openings: use a list of "
                            "texts, like openings = [\"You wake...\"]).")
    return tuple(opening.strip() for opening in openings if opening.strip())


def _first_problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        return f"{field}: {problem['msg']}" if field else problem["msg"]
    return str(error)


@dataclass(frozen=True)
class WorldListing:
    """A world a new campaign can start in, as the world lists show it."""

    name: str
    title: str  # INVALID_TITLE when the file does not load
    path: Path
    imported: bool  # from the player's worlds folder, not shipped in prompts/worlds/


INVALID_TITLE = "(invalid world file)"


def world_folders(settings: Settings) -> tuple[Path, Path]:
    """Where worlds are found: the shipped ones, then the player's imported ones."""
    return settings.prompts_dir / "worlds", settings.user_worlds_dir


def world_files(settings: Settings) -> dict[str, Path]:
    """Every world file by name. A shipped world's name is never taken by an imported
    one (the import refuses it); a file put there by hand under such a name is hidden."""
    found: dict[str, Path] = {}
    for folder in world_folders(settings):
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def world_names(settings: Settings) -> list[str]:
    return sorted(world_files(settings))


def shipped_world_names(settings: Settings) -> list[str]:
    return sorted(path.stem for path in world_folders(settings)[0].glob("*.toml"))


def list_worlds(settings: Settings) -> list[WorldListing]:
    """Every world, shipped and imported, by name, with its title."""
    listed = []
    for name, path in sorted(world_files(settings).items()):
        try:
            title = World.from_toml(name, read_world_text(path), str(path)).title
        except WorldError:
            title = INVALID_TITLE
        listed.append(WorldListing(name, title, path, path.parent != world_folders(settings)[0]))
    return listed


def read_world_file(settings: Settings, name: str) -> str:
    path = world_files(settings).get(name)
    if path is None:
        raise WorldError(f"No world named {name!r}; choose one of: "
                         f"{', '.join(world_names(settings)) or 'none found'}.")
    return read_world_text(path)


def with_opening(world_text: str, opening: str, origin: str) -> str:
    """The world file with another opening scene (a story imported with its own)."""
    import tomli_w

    try:
        data = tomllib.loads(world_text)
    except tomllib.TOMLDecodeError as error:
        raise WorldError(f"World file {origin} is invalid ({error}).") from None
    return tomli_w.dumps({**data, "opening": opening}, multiline_strings=True)


def read_world_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise WorldError(f"World file {path} is not valid UTF-8 (byte {error.start}); "
                            "re-save it as UTF-8.") from None
    except OSError as error:
        raise WorldError(f"Cannot read world file {path}: {error.strerror}.") from None
