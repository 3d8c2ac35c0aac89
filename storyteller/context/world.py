"""Worlds (prompts/worlds/*.toml) and the narrator system prompt (prompts/narrator.txt)."""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from storyteller.narrator.base import NarratorError

SYSTEM_PROMPT_FILE = "narrator.txt"


@dataclass(frozen=True)
class World:
    name: str
    title: str
    setting: str
    opening: str

    @classmethod
    def from_toml(cls, name: str, text: str, origin: str) -> World:
        try:
            data = tomllib.loads(text)
            return cls(name, str(data["title"]), str(data["setting"]).strip(),
                       str(data.get("opening", "")).strip())
        except (tomllib.TOMLDecodeError, KeyError) as error:
            raise NarratorError(f"World file {origin} is invalid ({error}); it needs "
                                "'title' and 'setting'.") from None


def world_names(prompts_dir: Path) -> list[str]:
    return sorted(path.stem for path in (prompts_dir / "worlds").glob("*.toml"))


def read_world_file(prompts_dir: Path, name: str) -> str:
    if name not in world_names(prompts_dir):
        raise NarratorError(f"No world named {name!r}; choose one of: "
                            f"{', '.join(world_names(prompts_dir)) or 'none found'}.")
    return read_world_text(prompts_dir / "worlds" / f"{name}.toml")


def read_world_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise NarratorError(f"World file {path} is not valid UTF-8 (byte {error.start}); "
                            "re-save it as UTF-8.") from None
    except OSError as error:
        raise NarratorError(f"Cannot read world file {path}: {error.strerror}.") from None


def system_prompt(prompts_dir: Path, world: World) -> str:
    """The narrator's instructions with the world filled in: identical every turn."""
    path = prompts_dir / SYSTEM_PROMPT_FILE
    template = string.Template(path.read_text(encoding="utf-8"))
    return template.safe_substitute(title=world.title, setting=world.setting).strip()
