"""One thread for the process's number crunching (llama.cpp and torch).

Both libraries run their math on OpenMP thread teams, and both load the same libgomp
(`libgomp.so.1`). Each thread that starts a parallel region gets a team of its own, kept
while that thread lives; once the process holds more OpenMP threads than cores, libgomp
stops spinning at its barriers and puts every waiting thread to sleep instead. A decode
step has hundreds of barriers, so a turn told on one thread while another (the prefill,
the summarizer, the memory writer's embedder) had ever computed ran at about 0.6x the
speed of plain llama-cpp-python (measured: 95 tok/s against 160 on 2 cores). Running
the narrator's context (turns and their prefill) and the embedder on one long-lived
thread keeps a single team, as plain llama-cpp-python has. Jobs run one at a time, in
the order they come, so each is small: a prefill batch, one decode step, one embedding
batch (a turn cancels the prefill). The background context that writes summaries and
notes stays on its own threads (LlamaCppNarrator.shared_compute): llama.cpp reads a
summary's whole prompt in one call, which would hold a turn for seconds here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")

_compute = threading.local()  # .is_it: set on the compute thread only


def _mark_thread() -> None:
    _compute.is_it = True


_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute",
                               initializer=_mark_thread)


def submit(function: Callable[..., Result], *args) -> Future[Result]:
    """Run function(*args) on the compute thread; do not wait for it."""
    return _executor.submit(function, *args)


def run(function: Callable[..., Result], *args) -> Result:
    """Run function(*args) on the compute thread and return its result (or raise). On
    the compute thread itself (a job asking for more), it runs in place."""
    if getattr(_compute, "is_it", False):
        return function(*args)
    return _executor.submit(function, *args).result()
