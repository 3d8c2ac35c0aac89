"""Files the import tests write: PNGs with chosen chunks, cards, a zlib bomb."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO / ".." / "shared" / "data" / "sillytavern"  # real SillyTavern files, read only
MB = 2**20


def chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(*extra_chunks: bytes) -> bytes:
    """A 1x1 RGB PNG with the chunks after its image data, where SillyTavern puts a card."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x10\x20\x30")  # one row: filter byte, then R G B
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + b"".join(extra_chunks) + chunk(b"IEND", b""))


def text_chunk(key: str, text: bytes) -> bytes:
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + text)


def card_chunk(key: str, card: dict) -> bytes:
    return text_chunk(key, base64.b64encode(json.dumps(card).encode("utf-8")))


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def zero_bomb(megabytes: int) -> bytes:
    """A zlib stream that inflates to `megabytes` MB of zeros, built without holding them:
    one compressed megabyte ends in a full flush, which resets the compressor, so the
    same bytes repeated decode to one more megabyte each."""
    zeros = bytes(MB)
    compressor = zlib.compressobj(9)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(megabytes):
        checksum = zlib.adler32(zeros, checksum)
    final_empty_block = b"\x03\x00"
    return first + again * (megabytes - 1) + final_empty_block + struct.pack(">I", checksum)
