"""campaign.json: one model per schema version; older ones are migrated on load, after
a backup of the file as it was.

    0  before the field existed: name, world, model, created
    1  + schema_version, updated (= created when migrated), turns (the live turns)
    2  + settings: the campaign's own sampling and content-log settings
    3  transcript records carry an `id` and the `after` id of the record they follow,
       so replay follows one line; older records are linked on load (TranscriptLinker)
       and never rewritten
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

SCHEMA_VERSION = 3
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


class _MetaV2(_MetaV1):
    schema_version: Literal[2]
    settings: CampaignSettings


class CampaignMeta(_MetaV2):
    """campaign.json as this version writes it."""

    schema_version: Literal[3]


def _v0_to_v1(meta: dict, live_turns: int) -> dict:
    return {**meta, "schema_version": 1, "updated": meta["created"], "turns": live_turns}


def _v1_to_v2(meta: dict, live_turns: int) -> dict:
    return {**meta, "schema_version": 2, "settings": {}}


def _v2_to_v3(meta: dict, live_turns: int) -> dict:
    return {**meta, "schema_version": 3}  # the transcript is linked as it is read


SCHEMAS: dict[int, type[BaseModel]] = {0: _MetaV0, 1: _MetaV1, 2: _MetaV2, 3: CampaignMeta}
MIGRATIONS = {0: _v0_to_v1, 1: _v1_to_v2, 2: _v2_to_v3}  # version -> a step to the next


class TranscriptLinker:
    """Checks each transcript record's links, in file order, and links records from
    before schema 3: such a record gets the id `legacy-<position>` (stable: the file is
    append-only) and follows the latest earlier record it replays after as written (a
    turn N after a record leaving N-1 live turns, an undo or a retelling of turn N after
    one leaving N). A transcript forked by two writers before the lock existed (two turns
    3) so links into two lines, deterministically."""

    def __init__(self):
        self._live: dict[str, int] = {}  # record id -> live turns after it
        self._latest: dict[int, str] = {}  # live turns -> the latest record leaving that many
        self._previous: str | None = None

    def link(self, record: dict) -> dict:
        if "id" not in record:
            record = {**record, "id": f"legacy-{len(self._live)}",
                      "after": self._legacy_parent(record)}
        record_id, after = record["id"], record.get("after")
        if not isinstance(record_id, str) or record_id in self._live:
            raise ValueError(f"duplicate or invalid record id {record_id!r}")
        if after is not None and after not in self._live:
            raise ValueError(f"follows an unknown record {after!r}")
        live = _live_after(record, self._live[after] if after else 0)
        self._live[record_id] = live
        self._latest[live] = record_id
        self._previous = record_id
        return record

    def _legacy_parent(self, record: dict) -> str | None:
        if record.get("type") == "undo":
            wanted = int(record["turn"])
        elif record.get("replaces"):
            wanted = int(record["replaces"])
        else:
            wanted = int(record["number"]) - 1
        if wanted in self._latest:
            return self._latest[wanted]
        return None if wanted == 0 else self._previous


def _live_after(record: dict, live_before: int) -> int:
    """How many turns are live after a record (as replay plays it: an undo of nothing
    is nothing, a retelling of nothing is a turn)."""
    kind = record.get("type")
    if kind == "undo":
        return max(live_before - 1, 0)
    if kind == "turn":
        return live_before if record.get("replaces") and live_before else live_before + 1
    return live_before


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
