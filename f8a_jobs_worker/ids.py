"""Random ids (run, event and message ids) without a system call each."""

from __future__ import annotations

import random
import uuid

_random = random.Random()  # noqa: S311 (ids, not secrets) seeded from os.urandom; thread-safe


def random_id() -> str:
    """A random (version 4) UUID from the process's generator rather than the system's (``uuid4`` reads
    ``os.urandom``, a system call): a busy worker makes several per run. Ids only need to be unique, not
    secret."""
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))
