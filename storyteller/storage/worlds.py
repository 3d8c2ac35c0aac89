"""Worlds: the TOML files in prompts/worlds/ (and a campaign's own world.toml).

A world has a title, a setting (the premise, in the system prompt), an opening scene,
and lore: [[characters]], [[locations]], [[items]] and [[plot]] tables, each with a
name, a text, optional aliases, an importance (1-10) and a pinned flag. The story
memory loads the lore when a campaign starts."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storyteller.errors import WorldError

LORE_TABLES = {"characters": "character", "locations": "location", "items": "item",
               "plot": "plot"}


class LoreEntry(BaseModel):
    """One [[characters]] / [[locations]] / [[items]] / [[plot]] table of a world file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=1000)
    aliases: tuple[str, ...] = ()
    importance: int = Field(5, ge=1, le=10)
    pinned: bool = False
    kind: str = ""  # filled from the table it came from


@dataclass(frozen=True)
class World:
    name: str
    title: str
    setting: str
    opening: str
    lore: tuple[LoreEntry, ...] = ()

    @classmethod
    def from_toml(cls, name: str, text: str, origin: str) -> World:
        try:
            data = tomllib.loads(text)
            return cls(name, str(data["title"]), str(data["setting"]).strip(),
                       str(data.get("opening", "")).strip(), _read_lore(data, origin))
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


def _first_problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        return f"{field}: {problem['msg']}" if field else problem["msg"]
    return str(error)


def world_names(prompts_dir: Path) -> list[str]:
    return sorted(path.stem for path in (prompts_dir / "worlds").glob("*.toml"))


def read_world_file(prompts_dir: Path, name: str) -> str:
    if name not in world_names(prompts_dir):
        raise WorldError(f"No world named {name!r}; choose one of: "
                            f"{', '.join(world_names(prompts_dir)) or 'none found'}.")
    return read_world_text(prompts_dir / "worlds" / f"{name}.toml")


def read_world_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise WorldError(f"World file {path} is not valid UTF-8 (byte {error.start}); "
                            "re-save it as UTF-8.") from None
    except OSError as error:
        raise WorldError(f"Cannot read world file {path}: {error.strerror}.") from None
