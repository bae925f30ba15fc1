"""The one task of the bench's flow; nothing consumes its queue, so it never runs."""

from __future__ import annotations

from typing import Any

from selinon import SelinonTask


class GithubTask(SelinonTask):  # type: ignore[misc]
    def run(self, node_args: Any) -> None:
        """Never called: the benchmark measures dispatch only."""
