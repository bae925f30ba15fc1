"""The dashboard's web app: Starlette, Jinja2 templates rendered on the server, plain ``fetch`` and server-sent
events for live parts; static assets shipped in the package (no CDN, no build step)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.messaging.dead_letters import describe, peek
from f8a_jobs_worker.messaging.port import Transport
from f8a_jobs_worker.ui.contract import Contract
from f8a_jobs_worker.ui.feed import EventFeed
from f8a_jobs_worker.ui.pages import Pages
from f8a_jobs_worker.ui.people import People

HERE = Path(__file__).parent
#: scripts and styles of our own only, nothing inline, no frames
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """The content security policy and its companions on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _peek(make_transport: Callable[[], Transport], queue: str, limit: int) -> list[dict[str, Any]]:
    transport = make_transport()
    transport.connect()
    try:
        return [describe(message) for message in peek(transport, queue, limit, wait=1.0)]
    finally:
        transport.close()


def create_app(
    people: People,
    make_client: Callable[[], Client],
    make_transport: Callable[[], Transport],
    events: str,
    dead: str,
) -> Starlette:
    """``make_client``: the dashboard's connection for commands; ``make_transport``: the one for events
    (used only where the broker fans events out to every subscriber) and for looking at the dead-letter
    queue ``dead``."""
    contract = Contract(make_client)
    feed = EventFeed(make_transport, events) if make_transport().facts.fanout else None
    templates = Jinja2Templates(directory=HERE / "templates")
    pages = Pages(contract, people, feed, templates, partial(_peek, make_transport, dead))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if feed is not None:
            feed.start()
        try:
            yield
        finally:
            if feed is not None:
                feed.stop()
            contract.close()

    routes = [
        Route("/", pages.route(pages.overview)),
        Route("/jobs", pages.route(pages.jobs)),
        Route("/jobs/{job_id:path}/do/{action}", pages.route(pages.act), methods=["POST"]),
        Route("/jobs/{job_id:path}", pages.route(pages.job)),
        Route("/failures", pages.route(pages.failures)),
        Route("/dead-letters", pages.route(pages.dead)),
        Route("/events/stream", pages.route(pages.stream)),
        Route("/healthz", pages.healthz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
