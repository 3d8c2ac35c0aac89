"""Reading a story to import: the format told by the content; anything unreadable is one
SaveError naming the file and where."""

import json

import pytest

from storyteller.errors import SaveError
from storyteller.storage.story_file import read_story

EXPORT = {"format": "storyteller-story", "version": 1, "campaign": {},
          "world": {"title": "T", "setting": "S", "opening": "It begins."},
          "turns": [{"type": "turn", "number": 4, "input": "look", "output": "Fog.",
                     "model": "m", "created": "2026-01-01T00:00:00+00:00"}]}


def test_an_export_is_told_by_its_content_and_its_turns_numbered_from_one(tmp_path):
    path = tmp_path / "story.txt"  # not the name: the content tells
    path.write_text(json.dumps(EXPORT, indent=2), encoding="utf-8")
    story = read_story(path)
    assert story.kind == "storyteller export" and story.opening == "It begins."
    assert [(t.number, t.input, t.output, t.model) for t in story.turns] == [
        (1, "look", "Fog.", "m")]


@pytest.mark.parametrize(("text", "where"), [
    ("", "is empty"),
    ('{"name": "x"}\n', "line 1 is neither"),
    ('\n\n{"input": "a", "output": 3}\n', "line 3"),
    ('{"input": "", "output": " "}\n', "line 1 has neither"),
    ('{\n  "format": "storyteller-story",\n  "turns": [\n', "line 4 is not valid JSON"),
    (json.dumps({**EXPORT, "version": 9}), "version 9"),
    (json.dumps({**EXPORT, "turns": [{"input": "a"}]}), "turn 1"),
])
def test_an_unreadable_story_is_one_line_naming_the_file_and_where(tmp_path, text, where):
    path = tmp_path / "story.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SaveError) as error:
        read_story(path)
    assert where in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)
