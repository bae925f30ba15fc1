"""GroupCommit without a database: results in order, a failing batch retried item by item, callbacks that
fail alone. (Its use for run records against PostgreSQL is tested in test_runs.py.)"""

from __future__ import annotations

import threading

import pytest

from f8a_jobs_worker.group_commit import GroupCommit, Written


def test_items_written_together_get_their_own_results_in_order() -> None:
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        batches.append(items)
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    assert group.submit_many([1, 2, 3]) == [10, 20, 30]
    assert group.submit(4) == 40
    assert batches == [[1, 2, 3], [4]]


def test_a_bad_item_fails_alone_after_its_batch_failed() -> None:
    def write(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    group: GroupCommit[int, int] = GroupCommit(write)
    seen: dict[int, Written[int]] = {}
    for item in (12, 13, 14):
        group.submit_nowait(item, lambda written, item=item: seen.__setitem__(item, written))
    assert seen[12].result() == 12 and seen[14].result() == 14
    assert isinstance(seen[13].exception(), ValueError)
    with pytest.raises(ValueError, match="unlucky"):
        group.submit_many([13])


def test_a_failing_callback_does_not_keep_the_others_from_theirs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: items)
    called: list[int] = []

    def then(written: Written[int]) -> None:
        called.append(written.result())
        if written.result() == 1:
            raise RuntimeError("callback bug")

    for item in (1, 2):
        group.submit_nowait(item, then)
    assert called == [1, 2]
    assert "the callback of a written item failed" in caplog.text


def test_threads_waiting_together_are_all_answered() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: [item + 1 for item in items])
    results: dict[int, int] = {}

    def submit(n: int) -> None:
        results[n] = group.submit(n)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {n: n + 1 for n in range(50)}
