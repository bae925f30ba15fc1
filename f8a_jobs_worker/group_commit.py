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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self, write: Callable[[list[Item]], list[Result]], max_waiting: int = 10_000
    ) -> None:
        """``write`` stores a batch in one transaction and returns one result per item, in order."""
        self._write = write
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._waiting: list[tuple[Item, Future[Result]]] = []
        self._writing = False

    def submit_nowait(self, item: Item, written: Callable[[Future[Result]], None]) -> None:
        """Queue ``item``; ``written(future)`` is called once it was written (or failed). If no one is
        writing, this thread writes until nothing waits, its own item and everyone else's."""
        future: Future[Result] = Future()
        future.add_done_callback(written)
        with self._cond:
            while len(self._waiting) >= self.max_waiting and self._writing:
                self._cond.wait()
            self._waiting.append((item, future))
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
        futures: list[Future[Result]] = [Future() for _ in items]
        with self._cond:
            self._waiting.extend(zip(items, futures, strict=True))
            while not all(future.done() for future in futures):
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
        return [future.result() for future in futures]

    def _write_batch(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        """One transaction for the batch; if it fails, each item alone, so one bad item fails only itself."""
        try:
            results = self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for item, future in batch:
                try:
                    future.set_result(self._write([item])[0])
                except Exception as one:
                    future.set_exception(one)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
