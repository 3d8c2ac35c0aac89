"""The compute thread: every job runs on it, results and errors come back to the
caller, and a job that asks for more runs it in place (no deadlock)."""

import threading

import pytest

from storyteller import compute


def thread_name() -> str:
    return threading.current_thread().name


def test_jobs_from_any_thread_run_on_the_same_thread():
    names = []
    workers = [threading.Thread(target=lambda: names.append(compute.run(thread_name)))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    names.append(compute.submit(thread_name).result())
    assert len(set(names)) == 1 and names[0] != thread_name()


def test_a_nested_job_runs_in_place_and_errors_reach_the_caller():
    assert compute.run(lambda: compute.run(thread_name)) == compute.run(thread_name)
    with pytest.raises(ZeroDivisionError):
        compute.run(lambda: 1 / 0)
