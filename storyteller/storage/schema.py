"""campaign.json: one model per schema version; older ones are migrated on load, after
a backup of the file as it was.

    0  before the field existed: name, world, model, created
    1  + schema_version, updated (= created when migrated), turns (the live turns)
    2  + settings: the campaign's own sampling and content-log settings
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from storyteller.config import Tuning
from storyteller.errors import SaveError
from storyteller.storage.durable import write_atomic
from storyteller.storage.names import unused_path

SCHEMA_VERSION = 2
CAMPAIGN_FILE = "campaign.json"
# Settings a campaign keeps for itself (the rest comes from flags and the environment).
CAMPAIGN_SETTINGS = tuple(Tuning.model_fields)

# The same fields as Tuning, each optional: None means the game's default. Other keys
# (from a later storyteller, say) are kept as they are.
CampaignSettings = create_model(
    "CampaignSettings", __config__=ConfigDict(extra="allow"),
    **{name: (Annotated[info.annotation, *info.metadata] | None, None)
       for name, info in Tuning.model_fields.items()})


class _MetaV0(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    name: str
    world: str
    model: str
    created: str


class _MetaV1(_MetaV0):
    schema_version: Literal[1]
    updated: str
    turns: int = Field(ge=0)


class CampaignMeta(_MetaV1):
    """campaign.json as this version writes it."""

    schema_version: Literal[2]
    settings: CampaignSettings


def _v0_to_v1(meta: dict, live_turns: int) -> dict:
    return {**meta, "schema_version": 1, "updated": meta["created"], "turns": live_turns}


def _v1_to_v2(meta: dict, live_turns: int) -> dict:
    return {**meta, "schema_version": 2, "settings": {}}


SCHEMAS: dict[int, type[BaseModel]] = {0: _MetaV0, 1: _MetaV1, 2: CampaignMeta}
MIGRATIONS = {0: _v0_to_v1, 1: _v1_to_v2}  # version -> a step to the next version


def read_meta(meta_path: Path) -> dict:
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise SaveError(f"{meta_path} is corrupt ({error.__class__.__name__}); it was "
                        "left untouched: restore it from a backup.") from None
    except OSError as error:
        raise SaveError(f"Cannot read {meta_path}: {error.strerror}.") from None
    if not isinstance(meta, dict) or "name" not in meta:
        raise SaveError(f"{meta_path} is not a campaign file; it was left untouched.")
    return meta


def migrate_meta(meta_path: Path, meta: dict, live_turns: int) -> dict:
    """Bring campaign.json to SCHEMA_VERSION: validate the old version, keep a backup of
    the file as it was, then write the migrated one atomically."""
    old_version = _schema_version(meta_path, meta)
    migrated = upgraded_meta(meta_path, meta, live_turns)
    if old_version == SCHEMA_VERSION:
        return migrated
    original, meta = meta_path.read_text(encoding="utf-8"), migrated
    backup = unused_path(meta_path.parent, f"{CAMPAIGN_FILE}.v{old_version}", ".bak")
    try:
        write_atomic(backup, original)
        write_atomic(meta_path, meta_text(meta))
    except OSError as error:
        raise SaveError(f"Cannot migrate {meta_path} to schema {SCHEMA_VERSION}: "
                        f"{error.strerror}; it was left untouched, make the saves "
                        "directory writable and try again.") from None
    return meta


def upgraded_meta(meta_path: Path, meta: dict, live_turns: int) -> dict:
    """campaign.json's contents at SCHEMA_VERSION, validated; nothing is written (a
    campaign opened read-only is migrated in memory only)."""
    version = _schema_version(meta_path, meta)
    meta = _validate(meta_path, meta, version)
    while version < SCHEMA_VERSION:
        meta = MIGRATIONS[version](meta, live_turns)
        version += 1
    return _validate(meta_path, meta, SCHEMA_VERSION)


def meta_text(meta: dict) -> str:
    return json.dumps(meta, indent=2, ensure_ascii=False) + "\n"


def _validate(meta_path: Path, meta: dict, version: int) -> dict:
    try:
        return SCHEMAS[version].model_validate(meta).model_dump(mode="json")
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "top level"
        raise SaveError(f"{meta_path} is not a valid campaign file (schema {version}, "
                        f"{where}: {problem['msg']}); it was left untouched: fix it or "
                        "restore it from a backup.") from None


def _schema_version(meta_path: Path, meta: dict) -> int:
    version = meta.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SaveError(f"{meta_path} has an invalid schema_version {version!r}; it was "
                        "left untouched: fix it or restore it from a backup.")
    if version > SCHEMA_VERSION:
        raise SaveError(f"{meta_path} was written by a newer storyteller (schema "
                        f"{version}); upgrade storyteller to load it.")
    return version
