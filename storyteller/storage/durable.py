"""Durable files: append-only JSONL (one JSON object a line, fsynced before returning,
a torn last line from a crash recovered) and atomic rewrites (the old version or the
new one, never a torn file). Every save file of a campaign is written through here."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from storyteller.errors import SaveError


def write_atomic(path: Path, text: str) -> None:
    """Write text so that the file is either the old version or the new one, never torn.
    Raises OSError."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def append_jsonl(path: Path, record: dict) -> None:
    """Append one record as a line, fsynced before returning. A torn last line (from a
    crash) is cut first, and a partial write (a full disk) is taken back, so every
    record starts on its own line. Raises OSError."""
    data = encode_record(record)
    _drop_torn_tail(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    """The complete JSON records of an append-only .jsonl file, in order ([] if absent).
    A torn last line (a crash mid-write) belonged to a record that never completed; any
    other unreadable line is a SaveError naming the file and the line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise SaveError(f"Cannot read {path}: {error.strerror}.") from None
    records = []
    for number, raw in enumerate(complete_lines(data).split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as error:
            raise SaveError(unreadable_line(path, number, error)) from None
        records.append(record)
    return records


def rewrite_jsonl(path: Path, records: list[dict]) -> None:
    """Replace a JSONL file with these records, atomically. Raises OSError."""
    write_atomic(path, b"".join(encode_record(record) for record in records).decode("utf-8"))


def complete_lines(data: bytes) -> bytes:
    """Everything up to the last newline: what follows it is a torn, unfinished write."""
    return data[: data.rfind(b"\n") + 1]


def encode_record(record: dict) -> bytes:
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: JSON's \u escapes keep it exactly
        return (json.dumps(record) + "\n").encode("ascii")


def unreadable_line(path: Path, number: int, error: Exception) -> str:
    return (f"{path} line {number} is unreadable ({error.__class__.__name__}); "
            "restore it from a backup or remove that line.")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        os.truncate(path, len(complete_lines(data)))
