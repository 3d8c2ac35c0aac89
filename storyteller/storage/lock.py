"""One writer per campaign: an exclusive OS file lock (flock, through the filelock
package) on `.lock` in the campaign folder, held while the campaign is open for play and
while anything writes it or opens its memory index (two processes on one embedded Chroma
folder can corrupt it). The kernel drops the lock when its holder exits, however it exits
(SIGKILL included), so a lock is never stale. `.lock-holder.json` names the holder (pid,
host) for the refusal line: a note beside the lock, never the lock itself.

Anything that writes a campaign takes it first:

    with hold_campaign(folder):
        ...

Reading (listing, export) needs no lock: the transcript is append-only."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from pathlib import Path

from filelock import FileLock, Timeout

from storyteller.errors import CampaignBusyError, SaveError
from storyteller.storage.durable import write_atomic
from storyteller.storage.names import now_iso

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock-holder.json"


class CampaignLock:
    """The lock of one campaign folder: acquire() or refuse at once, release() once."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = _file_lock(self.folder)
        self.held = False

    def acquire(self, create: bool = False) -> CampaignLock:
        """Take the lock (create: make the folder of a new campaign first). Raises
        CampaignBusyError when another storyteller holds it, SaveError when the folder is
        missing or the lock cannot be taken."""
        try:
            if create:
                self.folder.mkdir(parents=True, exist_ok=True)
            elif not self.folder.is_dir():
                raise SaveError(f"No campaign named {self.folder.name!r} in "
                                f"{self.folder.parent}.")
            self._lock.acquire()
        except Timeout:
            raise busy_error(self.folder) from None
        except OSError as error:
            if error.errno == errno.EROFS:  # nothing can write it, so no writer can fork it
                return self
            raise SaveError(f"Cannot lock {self.folder / LOCK_FILE}: {error.strerror}; free "
                            "some disk space or make the saves directory writable.") from None
        self.held = True
        self._write_holder()
        return self

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(OSError):
            (self.folder / HOLDER_FILE).unlink()
        self._lock.release()

    def __enter__(self) -> CampaignLock:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _write_holder(self) -> None:
        """Best effort: the lock holds without it, the refusal line just says less."""
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}
        with contextlib.suppress(OSError):
            write_atomic(self.folder / HOLDER_FILE, json.dumps(holder) + "\n")


def hold_campaign(folder: Path, create: bool = False) -> CampaignLock:
    """The campaign's lock, taken: use it as `with hold_campaign(folder): ...`, or keep it
    and release() it when the campaign closes."""
    return CampaignLock(folder).acquire(create)


def open_elsewhere(folder: Path) -> str | None:
    """Who holds the campaign's lock ("pid N on HOST"), or None when nobody does. Only a
    campaign with a holder note is probed (a free lock is taken and dropped at once), so
    listing never creates a file."""
    folder = Path(folder)
    if not (folder / HOLDER_FILE).is_file() or not (folder / LOCK_FILE).is_file():
        return None
    probe = _file_lock(folder)
    try:
        probe.acquire()
    except Timeout:
        return holder_of(folder) or "another process"
    except OSError:
        return None
    probe.release()
    return None  # the note was left by a holder that died: the kernel freed its lock


def holder_of(folder: Path) -> str:
    """"pid N on HOST" from the holder note, or "" when it is missing or unreadable."""
    try:
        holder = json.loads((Path(folder) / HOLDER_FILE).read_text(encoding="utf-8"))
        return f"pid {int(holder['pid'])} on {holder['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def busy_error(folder: Path) -> CampaignBusyError:
    holder = holder_of(folder)
    where = f" ({holder})" if holder else ""
    return CampaignBusyError(f"Campaign {Path(folder).name!r} is open in another "
                             f"storyteller{where}: close it there, or wait.")


def _file_lock(folder: Path) -> FileLock:
    # fallback_to_soft=False: only a kernel lock, never a marker file a crash would leave;
    # thread_local=False: the terminal app opens a game on a worker thread and closes it
    # on the main one.
    return FileLock(folder / LOCK_FILE, timeout=0, thread_local=False, fallback_to_soft=False)
