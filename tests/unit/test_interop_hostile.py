"""Malformed and hostile files to import: each is one line of WorldError naming the file,
within seconds and in bounded memory, and nothing is written."""

import base64
import json
import time
import tracemalloc
import zlib

import pytest
from interop_support import MB, SHARED, card_chunk, chunk, png, text_chunk, zero_bomb

from storyteller.errors import WorldError
from storyteller.storage.interop.importer import import_world


def seraphina_cut(at: float) -> bytes:
    data = (SHARED / "default_Seraphina.png").read_bytes()
    return data[:int(len(data) * at)]


def seraphina_without_iend() -> bytes:
    data = (SHARED / "default_Seraphina.png").read_bytes()
    return data[:data.rindex(b"IEND") - 4]


def huge_text_chunk() -> bytes:
    return png(text_chunk("chara", b"A" * (40 * MB)))


def inflating_chunk() -> bytes:
    """A zTXt chunk named chara of about 2 MB that inflates to 2 GB of zeros."""
    return png(chunk(b"zTXt", b"chara\0\0" + zero_bomb(2048)))


def bad_checksum() -> bytes:
    data = bytearray(png(card_chunk("chara", {"name": "X", "first_mes": "Hi"})))
    data[-20] ^= 0xFF  # inside the card chunk
    return bytes(data)


def json_bytes(data: object) -> bytes:
    return json.dumps(data).encode()


CASES = {
    "truncated PNG": ("card.png", lambda: seraphina_cut(0.5), "truncated"),
    "PNG cut before its end": ("card.png", seraphina_without_iend, "truncated"),
    "PNG without a card": ("plain.png", lambda: png(text_chunk("Title", b"A cat")),
                           "no character card"),
    "PNG with a bad checksum": ("card.png", bad_checksum, "damaged"),
    "card chunk not base64": ("card.png", lambda: png(text_chunk("chara", b"%%%!")),
                              "not valid base64"),
    "card chunk not JSON": ("card.png", lambda: png(text_chunk(
        "chara", base64.b64encode(b"{name: oops"))), "not valid JSON"),
    "40 MB text chunk": ("big.png", huge_text_chunk, "40 MB"),
    "zTXt that inflates to 2 GB": ("bomb.png", inflating_chunk, "too large"),
    "not JSON at all": ("world.json", lambda: b"\x00\x01binary\xff", "neither a PNG"),
    "JSON list": ("world.json", lambda: json_bytes([1, 2, 3]), "not an object"),
    "JSON of another shape": ("world.json", lambda: json_bytes({"foo": 1}),
                              "not a SillyTavern World Info"),
    "entries not objects": ("world.json", lambda: json_bytes({"entries": {"0": "text"}}),
                            "entry 0 is not a JSON object"),
    "no entries with text": ("world.json", lambda: json_bytes({"entries": {"0": {
        "key": ["a"], "content": ""}}}), "no enabled entry"),
    "card without a name": ("card.json", lambda: json_bytes({"spec": "chara_card_v2",
                                                             "data": {"name": ""}}), "no name"),
    "card book of the wrong shape": ("card.json", lambda: json_bytes({
        "spec": "chara_card_v2", "data": {"name": "X", "character_book": {"entries": 7}}}),
        "no list of entries"),
    "NovelAI entries not a list": ("x.lorebook", lambda: json_bytes({
        "lorebookVersion": 5, "entries": {}}), "not a list"),
    "JSON nested too deeply": ("deep.json", lambda: b"[" * 200_000, "nested too deeply"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_file_is_one_line_fast_bounded_and_writes_nothing(tmp_path, case):
    name, make, problem = CASES[case]
    path = tmp_path / name
    path.write_bytes(make())
    worlds = tmp_path / "worlds"
    worlds.mkdir()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(WorldError) as error:
            import_world(path, worlds)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(error.value)
    assert problem in message and str(path) in message and "\n" not in message
    assert seconds < 5
    assert peak < 24 * MB  # the 40 MB chunk is never read, the 2 GB never inflated
    assert list(worlds.iterdir()) == []


def test_the_test_bomb_really_inflates_far_past_any_bound():
    inflater = zlib.decompressobj()
    out = inflater.decompress(zero_bomb(2048), 64 * MB)
    assert len(out) == 64 * MB and not inflater.eof and set(out) == {0}


def test_a_file_too_big_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as file:
        file.truncate(17 * MB)  # sparse: nothing is written to disk
    with pytest.raises(WorldError, match="17 MB, more than the 16 MB"):
        import_world(path, tmp_path / "worlds")
    assert not (tmp_path / "worlds").exists()


@pytest.mark.parametrize("name", ["../outside", "", "a/b", "con"])
def test_a_bad_world_name_writes_nothing(tmp_path, name):
    with pytest.raises(WorldError) as error:
        import_world(SHARED / "Eldoria.json", tmp_path / "worlds", name=name)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "worlds").exists() and not (tmp_path / "outside.toml").exists()


def test_a_missing_file_or_a_folder_is_one_line(tmp_path):
    for path in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(WorldError, match="cannot be read") as error:
            import_world(path, tmp_path / "worlds")
        assert "\n" not in str(error.value)
