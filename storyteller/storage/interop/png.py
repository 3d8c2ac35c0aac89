"""The text chunks of a PNG file, where character cards live, in bounded memory.

Pillow's chunk reader (PngImagePlugin.PngStream) walks the chunks and parses the text
ones; every other chunk, the image data included, is skipped unread, so no pixel is ever
decoded. A text chunk over MAX_TEXT_CHUNK is refused before it is read, and Pillow
inflates a compressed one (zTXt, iTXt) only up to PngImagePlugin.MAX_TEXT_CHUNK (1 MB)."""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from PIL import PngImagePlugin

from storyteller.storage.interop.draft import FormatProblem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_CHUNK = 8 * 2**20  # a card with a large lorebook, base64: a few MB
MAX_CHUNKS = 100_000  # a real PNG has a few; its image data is split into hundreds at most
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def png_texts(file: BinaryIO) -> dict[str, str]:
    """The text chunks of a PNG file open at its start, by keyword in lowercase."""
    if file.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        raise FormatProblem("it is not a PNG file")
    stream = PngImagePlugin.PngStream(file)
    try:
        for _ in range(MAX_CHUNKS):
            chunk, position, length = stream.read()
            if chunk == b"IEND":
                return {key.lower(): str(text) for key, text in stream.im_text.items()}
            if chunk not in TEXT_CHUNKS:
                file.seek(length + 4, os.SEEK_CUR)  # the chunk's data and checksum, unread
                continue
            if length > MAX_TEXT_CHUNK:
                raise FormatProblem(f"its {chunk.decode()} chunk holds {length / 2**20:.0f} MB "
                                    f"of text; a card takes {MAX_TEXT_CHUNK // 2**20} MB at most")
            stream.crc(chunk, stream.call(chunk, position, length))
    except (struct.error, OSError):  # a chunk header or data cut short
        raise FormatProblem("the PNG file is truncated") from None
    except SyntaxError as error:  # Pillow: a bad chunk name or checksum
        raise FormatProblem(f"the PNG file is damaged ({error})") from None
    except ValueError as error:  # Pillow: a compressed text past its bound, too much text
        raise FormatProblem(f"its text chunks are too large ({error})") from None
    raise FormatProblem(f"it has more than {MAX_CHUNKS} chunks")
