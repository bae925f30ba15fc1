"""The pages: each reads what it shows through commands of the contract (never the job store), at most one
page of jobs at a time; actions are commands sent on behalf of the person looking."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.templating import Jinja2Templates

from f8a_jobs_worker.errors import BrokerUnavailable, JobsError, ReplyTimeout
from f8a_jobs_worker.ui import words
from f8a_jobs_worker.ui.contract import Contract
from f8a_jobs_worker.ui.feed import EventFeed
from f8a_jobs_worker.ui.people import People, Viewer

PAGE = 50
STATES = ("running", "paused", "broken")
#: an action's form name -> the command it sends
ACTIONS = {
    "pause": "job.pause",
    "resume": "job.resume",
    "run_now": "job.run_now",
    "delete": "job.delete",
}
_STATUS = {"job_not_found": 404, "forbidden": 403, "validation_error": 400}

Page = Callable[[Request, Viewer], Awaitable[Response]]


class Pages:
    def __init__(
        self,
        contract: Contract,
        people: People,
        feed: EventFeed | None,
        templates: Jinja2Templates,
        dead_letters: Callable[[int], list[dict[str, Any]]],
    ) -> None:
        """``dead_letters(limit)``: the first dead letters, looked at and left in their queue."""
        self.contract = contract
        self.people = people
        self.feed = feed
        self.templates = templates
        self.dead_letters = dead_letters

    def route(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        """A page for a known person, its errors shown as pages of their own."""

        async def handle(request: Request) -> Response:
            viewer = self.people.of(request)
            if viewer is None:
                return Response("no user header from the authenticating proxy", status_code=401)
            try:
                return await page(request, viewer)
            except JobsError as exc:
                return self._error(
                    request, viewer, exc.code, exc.message, _STATUS.get(exc.code, 502)
                )
            except (BrokerUnavailable, ReplyTimeout) as exc:
                return self._error(request, viewer, "unavailable", str(exc), 503)

        return handle

    async def call(self, command: str, **args: Any) -> dict[str, Any]:
        return await run_in_threadpool(self.contract.call, command, args)

    def render(self, request: Request, viewer: Viewer, name: str, **context: Any) -> Response:
        return self.templates.TemplateResponse(
            request,
            name,
            {
                "viewer": viewer,
                "token": self.people.token(viewer),
                "stream": self.feed is not None,
                "words": words,
                "now": words.now(),
                **context,
            },
        )

    def _error(
        self, request: Request, viewer: Viewer, code: str, message: str, status: int
    ) -> Response:
        response = self.render(request, viewer, "error.html", code=code, message=message)
        response.status_code = status
        return response

    # -- pages -------------------------------------------------------------------------------------------

    async def overview(self, request: Request, viewer: Viewer) -> Response:
        state = await self.call("scheduler.state")
        counts = {
            kind: (await self.call("job.list", job_type=kind, limit=1))["jobs_count"]
            for kind in ("user", "default", "failed")
        }
        failing = await self.call("job.list", failing=True, limit=10)
        paused = await self.call("job.list", state="paused", limit=10)
        runs = await self.call("runs.summary", window_s=3600)
        recent = list(self.feed.recent)[:25] if self.feed is not None else []
        return self.render(
            request,
            viewer,
            "overview.html",
            state=state,
            counts=counts,
            failing=failing,
            paused=paused,
            runs=runs,
            bars=words.bars(runs["lateness"]["buckets"]),
            recent=recent,
        )

    async def jobs(self, request: Request, viewer: Viewer) -> Response:
        """A page of jobs, narrowed as the form says (each filter is one of job.list's)."""
        query = request.query_params
        chosen = {
            "type": query.get("type", "all") if query.get("type") in ("user", "default") else "all",
            "state": query.get("state", "") if query.get("state") in STATES else "",
            "handler": query.get("handler", "").strip(),
            "prefix": query.get("prefix", "").strip(),
            "failing": "1" if query.get("failing") else "",
        }
        args: dict[str, Any] = {"job_type": chosen["type"], "limit": PAGE}
        args |= {key: chosen[key] for key in ("state", "handler", "prefix") if chosen[key]}
        if chosen["failing"]:
            args["failing"] = True
        if after := query.get("after"):
            args["after"] = after
        found = await self.call("job.list", **args)
        kept = {key: value for key, value in chosen.items() if value and value != "all"}
        following = (
            "/jobs?" + urlencode({**kept, "after": found["next"]}) if "next" in found else None
        )
        return self.render(
            request, viewer, "jobs.html", found=found, chosen=chosen, following=following
        )

    async def job(self, request: Request, viewer: Viewer) -> Response:
        job_id = request.path_params["job_id"]
        found = await self.call("job.get", job_id=job_id, next_runs=5)
        history = await self.call("job.history", job_id=job_id, limit=25)
        return self.render(
            request,
            viewer,
            "job.html",
            job=found["job"],
            next_runs=found.get("next_runs", []),
            runs=history["runs"],
            done=request.query_params.get("done"),
            answer=request.query_params.get("answer"),
        )

    async def failures(self, request: Request, viewer: Viewer) -> Response:
        args: dict[str, Any] = {"job_type": "failed", "limit": PAGE}
        if after := request.query_params.get("after"):
            args["after"] = after
        found = await self.call("job.list", **args)
        following = "/failures?" + urlencode({"after": found["next"]}) if "next" in found else None
        return self.render(request, viewer, "failures.html", found=found, following=following)

    async def dead(self, request: Request, viewer: Viewer) -> Response:
        """The first dead letters, read and given back: nothing is taken off the queue."""
        letters = await run_in_threadpool(self.dead_letters, PAGE)
        return self.render(request, viewer, "dead.html", letters=letters, limit=PAGE)

    async def act(self, request: Request, viewer: Viewer) -> Response:
        """An action's form: the person's token checked, the command sent on their behalf."""
        job_id, action = request.path_params["job_id"], request.path_params["action"]
        form = await request.form()
        token = form.get("token")
        if not viewer.operator or action not in ACTIONS:
            return Response("actions are not enabled for you", status_code=403)
        if not isinstance(token, str) or not self.people.valid(viewer, token):
            return Response("the form is stale or not from this dashboard", status_code=403)
        result = await run_in_threadpool(
            self.contract.call, ACTIONS[action], {"job_id": job_id}, viewer.name
        )
        answer = result["job"]["state"] if "job" in result else f"removed {job_id}"
        target = "/jobs" if action == "delete" else f"/jobs/{job_id}"
        query = urlencode({"done": action, "answer": answer})
        return RedirectResponse(f"{target}?{query}", status_code=303)

    # -- live ---------------------------------------------------------------------------------------------

    async def stream(self, request: Request, viewer: Viewer) -> Response:
        """Server-sent events: each event the shared subscription gets (204 where there is none: poll)."""
        if self.feed is None:
            return Response(status_code=204)
        feed = self.feed
        queue = feed.subscribe()

        async def events() -> AsyncIterator[str]:
            try:
                yield ": live\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {json.dumps(event)}\n\n"
            finally:
                feed.unsubscribe(queue)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def healthz(self, request: Request) -> Response:
        """Alive, and whether the live feed is connected (None: this broker has no fan-out)."""
        live = None if self.feed is None else self.feed.connected
        return JSONResponse({"ok": True, "live_events": live})
