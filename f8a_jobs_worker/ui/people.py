"""Who is looking at the dashboard and whether they may act.

Listening on 127.0.0.1 only, the person is the local user who started it (whoever can reach a loopback port
is on this machine). Listening beyond it, an authenticating proxy in front must name the person in a header
(``F8A_JOBS_UI_AUTH_HEADER``, e.g. ``X-Forwarded-User`` of oauth2-proxy): without that setting the dashboard
refuses to start there, and a request without the header is refused. Actions need ``F8A_JOBS_UI_ACTIONS``
and an operator: the local user, or one of ``F8A_JOBS_UI_OPERATORS`` (``*``: everyone signed in). Forms
carry a token bound to the person (HMAC with a secret of this process), so another site cannot post them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from f8a_jobs_worker.errors import ConfigError


@dataclass(frozen=True)
class Viewer:
    name: str
    operator: bool


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class People:
    def __init__(
        self, host: str, auth_header: str, operators: str, actions: bool, local_user: str
    ) -> None:
        if not loopback(host) and not auth_header:
            raise ConfigError(
                f"the dashboard listens on {host}, beyond 127.0.0.1: put it behind an authenticating "
                "proxy and name its user header in F8A_JOBS_UI_AUTH_HEADER"
            )
        self.auth_header = auth_header
        self.operators = {name.strip() for name in operators.split(",") if name.strip()}
        self.actions = actions
        self.local_user = local_user
        self._secret = secrets.token_bytes(32)

    def of(self, request: Request) -> Viewer | None:
        """The person behind a request (None: no one vouched for them)."""
        if self.auth_header:
            name = request.headers.get(self.auth_header, "").strip()
            if not name or len(name) > 255:
                return None
            allowed = "*" in self.operators or name in self.operators
        else:
            name, allowed = self.local_user, True
        return Viewer(name, self.actions and allowed)

    def token(self, viewer: Viewer) -> str:
        return hmac.new(self._secret, viewer.name.encode(), hashlib.sha256).hexdigest()

    def valid(self, viewer: Viewer, token: str) -> bool:
        return hmac.compare_digest(self.token(viewer).encode(), token.encode())
