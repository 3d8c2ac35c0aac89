"""Formats of other tools: SillyTavern World Info, character cards (V2/V3, JSON or PNG)
and chats, NovelAI lorebooks.

Each converter turns a file into a WorldDraft (draft.py), which becomes world TOML;
importer.import_world detects the format, converts, checks that the world loads and
writes it. Nothing here imports Textual or the model libraries."""
