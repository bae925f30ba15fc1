"""The private parts of libraries this package relies on, and the releases they were checked against.

pyproject.toml bounds each library to its checked series; tests/test_private_apis.py fails when an installed
release is outside it, a private attribute listed here is gone, or its calling convention changed, so an
upgrade is a deliberate step: re-read each use, run the suite, then widen the series here and the bound in
pyproject.toml. docs/architecture.md ("Private APIs") says why each one is used.
"""

from __future__ import annotations

from typing import NamedTuple

#: distribution name -> the release series (major.minor) the private uses below were checked against
CHECKED = {"selinon": "1.4"}


class PrivateUse(NamedTuple):
    package: str
    target: str  # "module:Class.attribute"
    where: str
    why: str


PRIVATE = [
    PrivateUse(
        "selinon",
        "selinon.selective:compute_selective_run",
        "flows/selinon_backend.py",
        "a selective run sent with a task id of ours (run_flow_selective makes its own)",
    ),
]
