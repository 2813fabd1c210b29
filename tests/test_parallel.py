"""parallel.pxd's parallel_for: every task runs exactly once, on a thread index below the thread
count, also when several Python threads call it at once and in a forked child."""
import multiprocessing
import sys
import threading

import numpy as np
import pytest

from pyconv._kernels.parallel import run_counting, run_stress


@pytest.mark.parametrize("tasks", [0, 1, 2, 7, 64, 1000])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_every_task_runs_once(tasks, threads):
    counts, thread_of = run_counting(tasks, threads)
    assert (counts == 1).all()
    assert ((thread_of >= 0) & (thread_of < max(1, min(threads, tasks)))).all()


def test_many_jobs_in_a_row():
    for _ in range(2000):
        counts, _ = run_counting(33, 2)
        assert (counts == 1).all()


def test_concurrent_callers():
    """Calls from several Python threads at once: one uses the pool, the others run inline."""
    failures = []

    def work():
        for _ in range(300):
            counts, _ = run_counting(50, 2)
            if not (counts == 1).all():
                failures.append(counts)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures


def _child(queue):
    counts, _ = run_counting(100, 2)
    queue.put(bool((counts == 1).all()))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_works_in_a_forked_child():
    run_counting(100, 2)  # the parent's pool exists before the fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5)


def test_thread_indices_cover_the_team_when_work_is_long():
    """With enough tasks both threads usually take part; never more than asked for."""
    counts, thread_of = run_counting(200000, 2)
    assert (counts == 1).all()
    assert set(np.unique(thread_of)) <= {0, 1}


@pytest.mark.parametrize("threads", [1, 2])
def test_back_to_back_jobs_of_different_sizes_and_contexts(threads):
    """20000 tiny jobs in a row, 1..97 tasks each, alternating two task functions whose contexts
    live on the caller's stack: a worker that wakes late for one job must not run a task of the
    next (or of the finished one), nor with the other job's function or context, nor twice."""
    for seed in range(3):
        not_once, wrong = run_stress(20000, threads, seed)
        assert not_once == 0
        assert wrong == 0


@pytest.mark.parametrize("threads", [1, 2])
def test_back_to_back_jobs_from_several_python_threads(threads):
    """The same from four Python threads at once: whichever holds the pool publishes job after
    job while the others run theirs inline."""
    results = []

    def work(seed):
        results.append(run_stress(20000, threads, 100 + seed))

    callers = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert results == [(0, 0)] * 4
