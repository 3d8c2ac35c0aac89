"""NovelAI lorebooks (.lorebook: {"lorebookVersion": N, "entries": [...]}), read as
SillyTavern's converter reads them: displayName names an entry, keys are its aliases,
text its text, forceActivation pins it and contextConfig.budgetPriority orders it."""

from __future__ import annotations

from storyteller.storage.interop.draft import (
    FormatProblem,
    LoreDraft,
    WorldDraft,
    clean_text,
    entry_objects,
    lorebook_draft,
    number,
    strings,
    unread,
)

DEFAULT_BUDGET_PRIORITY = 400  # NovelAI's default
_FIELDS_READ = ("displayName", "keys", "text", "enabled", "forceActivation")


def is_novelai(data: dict) -> bool:
    return "lorebookVersion" in data


def novelai_draft(data: dict, title: str) -> WorldDraft:
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise FormatProblem("its entries are not a list")
    drafts = [_lore(entry) for entry in entry_objects(enumerate(entries, start=1))]
    return lorebook_draft(drafts, title, "NovelAI lorebook")


def _lore(entry: dict) -> LoreDraft:
    config = entry.get("contextConfig")
    priority = config.get("budgetPriority") if isinstance(config, dict) else None
    return LoreDraft(name=clean_text(entry.get("displayName")), text=clean_text(entry.get("text")),
                     aliases=strings(entry.get("keys")), pinned=bool(entry.get("forceActivation")),
                     enabled=entry.get("enabled", True) is not False,
                     order=number(priority, DEFAULT_BUDGET_PRIORITY),
                     placement=unread(entry, _FIELDS_READ))
