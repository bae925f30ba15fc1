"""Group commit for writes made by many threads: one write for whatever is waiting, no writer thread.

Used for the runner threads' run records (one transaction) and their events (one wait for the broker's
confirms). A thread that submits an item waits until it is written. If no other thread is writing, it becomes
the writer: it takes every item waiting at that moment (its own included) and writes them in one call, then
wakes the others. Items submitted meanwhile are written by the next thread to find the writer gone. Each caller
still returns only once its own item is committed (or confirmed), so "recorded, then announced" holds as
before; under load the commits are shared.

:meth:`GroupCommit.submit_nowait` hands an item over without waiting for its write: a thread that finds no
writer becomes the writer and writes batch after batch until nothing waits, so the batches grow with the
backlog instead of being capped by the number of threads waiting. What is to happen once an item is written
is its callback, called by the writer. Submitters wait only while :attr:`GroupCommit.max_waiting` items
wait (backpressure).

What became of an item is a :class:`Written`, not a ``concurrent.futures.Future``: a Future builds a
``threading.Condition`` of its own, and at a thousand runs a second (a run record and an event each) that was
a tenth of the worker's CPU. Here the group's one condition does all the waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger(__name__)


class Written(Generic[Result]):
    """The result of one item's write, or the exception that failed it; set once, by the writer."""

    __slots__ = ("_error", "_result", "done", "then")

    def __init__(self, then: Callable[[Written[Result]], None] | None = None) -> None:
        self.done = False
        self._result: Result | None = None
        self._error: BaseException | None = None
        #: called by the writer once the item is written (or failed)
        self.then = then

    def result(self) -> Result:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def exception(self) -> BaseException | None:
        return self._error

    def _settle(self, result: Result | None, error: BaseException | None = None) -> None:
        self._result, self._error, self.done = result, error, True
        if self.then is not None:
            try:
                self.then(self)
            except Exception:
                log.exception("the callback of a written item failed")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self, write: Callable[[list[Item]], list[Result]], max_waiting: int = 10_000
    ) -> None:
        """``write`` stores a batch in one transaction and returns one result per item, in order."""
        self._write = write
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._waiting: list[tuple[Item, Written[Result]]] = []
        self._writing = False

    def submit_nowait(self, item: Item, written: Callable[[Written[Result]], None]) -> None:
        """Queue ``item``; ``written(outcome)`` is called once it was written (or failed). If no one is
        writing, this thread writes until nothing waits, its own item and everyone else's."""
        outcome: Written[Result] = Written(written)
        with self._cond:
            while len(self._waiting) >= self.max_waiting and self._writing:
                self._cond.wait()
            self._waiting.append((item, outcome))
            if self._writing:
                return
            self._writing = True
            try:
                while self._waiting:
                    batch, self._waiting = self._waiting, []
                    self._cond.notify_all()  # room again for submitters held back
                    self._cond.release()
                    try:
                        self._write_batch(batch)
                    finally:
                        self._cond.acquire()
            finally:
                self._writing = False
                self._cond.notify_all()

    def submit(self, item: Item) -> Result:
        """Write ``item`` (with whatever else is waiting); its result, or the exception of its write."""
        return self.submit_many([item])[0]

    def submit_many(self, items: list[Item]) -> list[Result]:
        """Write ``items`` (in one batch if no one else is writing); their results, in order. The first
        exception among them is raised, once every one of them was written or failed."""
        outcomes: list[Written[Result]] = [Written() for _ in items]
        with self._cond:
            self._waiting.extend(zip(items, outcomes, strict=True))
            while not all(outcome.done for outcome in outcomes):
                if self._writing:
                    self._cond.wait()
                    continue
                self._writing = True
                batch, self._waiting = self._waiting, []
                self._cond.release()
                try:
                    self._write_batch(batch)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    self._cond.notify_all()
        return [outcome.result() for outcome in outcomes]

    def _write_batch(self, batch: list[tuple[Item, Written[Result]]]) -> None:
        """One transaction for the batch; if it fails, each item alone, so one bad item fails only itself."""
        try:
            results = self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1]._settle(None, exc)
                return
            for item, outcome in batch:
                try:
                    one = self._write([item])[0]
                except Exception as error:
                    outcome._settle(None, error)
                else:
                    outcome._settle(one)
            return
        for (_, outcome), result in zip(batch, results, strict=True):
            outcome._settle(result)
