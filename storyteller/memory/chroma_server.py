"""Start a real `chroma run` server on 127.0.0.1 (the CLI ships with chromadb), for the
tests and benchmarks that use memory over HTTP (`--memory-url`)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 60


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def chroma_server(data_dir: Path, log_path: Path, port: int | None = None) -> Iterator[str]:
    """Run a server on its own data folder until the block ends (always terminated).
    Yields its URL; raises RuntimeError with the log's tail if it does not start. A port
    may be given (to start a server again where it was)."""
    port = port or free_port()
    chroma = Path(sys.executable).parent / "chroma"
    with open(log_path, "ab") as output:
        server = subprocess.Popen(
            [str(chroma), "run", "--host", "127.0.0.1", "--port", str(port),
             "--path", str(data_dir)], stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/api/v2/heartbeat", server, log_path, "chroma run")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_up(probe_url: str, server: subprocess.Popen, log_path: Path, name: str,
                  timeout_s: float = START_TIMEOUT_S) -> None:
    """Until probe_url answers; RuntimeError with the log's tail if the server exits or
    does not answer in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(probe_url, timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} did not start: {tail}") from None
            time.sleep(0.2)
