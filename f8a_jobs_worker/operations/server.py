"""The operations HTTP server: ``/metrics`` (Prometheus text format), ``/livez`` and ``/readyz`` (JSON, 200 or
503). Off unless ``F8A_JOBS_METRICS_PORT`` is set; serves on a daemon thread of its own."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from f8a_jobs_worker.operations.metrics import Metrics
from f8a_jobs_worker.operations.probes import Probe

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("operations server: " + format, *args)


class OperationsServer:
    def __init__(
        self, host: str, port: int, metrics: Metrics, liveness: Probe, readiness: Probe
    ) -> None:
        self.liveness = liveness
        self.readiness = readiness
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._server = make_server(host, port, self._app, _Server, handler_class=_QuietHandler)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        probe = {"/livez": self.liveness, "/readyz": self.readiness}.get(path)
        if probe is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"try /metrics, /livez or /readyz\n"]
        ok, checks = probe.run()
        body = json.dumps(
            {"status": "ok" if ok else "failing", "checks": checks, **probe.read_facts()}
        ).encode()
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="f8a-operations-http", daemon=True
        )
        self._thread.start()
        log.info("metrics and probes on port %d: /metrics, /livez, /readyz", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
