"""The process's HTTP endpoint: /metrics, /healthz and /readyz, served from a daemon thread.

stdlib `ThreadingHTTPServer`: a slow readiness probe never blocks a scrape, and there is no web
framework to install in every image.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from heron.core.runtime.health import CheckResult, NamedResult, Readiness

log = logging.getLogger(__name__)


class HealthServer:
    """Serves the registry and the probes on host:port (port 0 = any free port)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        liveness: Callable[[], CheckResult],
        readiness: Readiness,
    ) -> None:
        self.registry = registry
        self.liveness = liveness
        self.readiness = readiness
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def start(self) -> HealthServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="heron-http",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "serving /metrics, /healthz, /readyz on http://%s:%d",
            self.host,
            self.port,
            extra={"http_host": self.host, "http_port": self.port},
        )
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def metrics_body(self, accept: str) -> tuple[bytes, str]:
        """OpenMetrics 1.0 when `accept` asks for it (Prometheus does): the only format that
        carries exemplars (heron.core.runtime.metrics); the classic text format otherwise."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def healthz(self) -> tuple[int, dict[str, Any]]:
        result = self.liveness()
        status = HTTPStatus.OK if result.ok else HTTPStatus.SERVICE_UNAVAILABLE
        return status, {"status": "alive" if result.ok else "stuck", "detail": result.detail}

    def readyz(self) -> tuple[int, dict[str, Any]]:
        results = self.readiness.run()
        failed = [r for r in results if not r.ok]
        body: dict[str, Any] = {
            "status": "not ready" if failed else "ready",
            "failed": [_as_json(r) for r in failed],
            "checks": [_as_json(r) for r in results],
        }
        return (HTTPStatus.SERVICE_UNAVAILABLE if failed else HTTPStatus.OK), body


def _as_json(result: NamedResult) -> dict[str, Any]:
    return {"name": result.name, "ok": result.ok, "detail": result.detail}


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, content_type = server.metrics_body(self.headers.get("Accept", ""))
                self._send(HTTPStatus.OK, body, content_type)
            elif path == "/healthz":
                self._send_json(*server.healthz())
            elif path == "/readyz":
                self._send_json(*server.readyz())
            else:
                known = {"paths": ["/metrics", "/healthz", "/readyz"]}
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such path {path!r}", **known})

        def _send_json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Probes arrive every few seconds: keep them out of INFO logs.
            log.debug("http %s", format % args)

    return Handler
