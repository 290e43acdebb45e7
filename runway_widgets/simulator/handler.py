"""HTTP plumbing: the threaded server and the request handler.

The handler reads the request (capping bodies), applies a pending fault, asks
:mod:`.routes` for the answer and writes it. Connection-level faults (stall,
drop, reset) are carried out here because they need the raw socket.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any

from .backend import Backend
from .faults import fault_response
from .responses import Response, gateway_error
from .routes import ApiRequest, bearer_key, guess_task_id, route_api, route_control


__all__ = ["SimServer", "SimHandler", "MAX_BODY"]

logger = logging.getLogger("runway_widgets.simulator")

#: Request bodies above this size are refused with 413 (a create body with an image inline
#: as a data URI may be up to 5 MB; feed bodies are tiny).
MAX_BODY = 6 * 1024 * 1024
#: Oversized bodies up to this size are read and discarded before answering 413.
DRAIN_LIMIT = 16 * 1024 * 1024


class SimServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its simulator and can cut live connections."""

    daemon_threads = True  # handler threads never keep the interpreter alive
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: Backend) -> None:
        # Must be set before the base constructor creates the socket.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SimHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall for
        # seconds on hosts with slow reverse DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        """Shut down every open client socket so blocked handler threads exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; clients hanging up mid-answer
        # is routine here (timeouts, faults), so keep it to the debug log.
        logger.debug("error while handling a request from %s", client_address, exc_info=True)


class SimHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "nginx"  # what sits in front of the real gateway
    sys_version = ""
    timeout = 30.0  # idle keep-alive connections are closed after this
    # Headers and body go out in separate writes; with Nagle's algorithm and the client's
    # delayed ACK every answer would wait ~40 ms for nothing.
    disable_nagle_algorithm = True
    server: SimServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        self._handle()

    do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # ------------------------------------------------------------------ request
    def _read_body(self) -> bytes | Response:
        """Read the body by Content-Length; a Response when it must be refused."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return gateway_error(411, "chunked request bodies are not supported")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            self.close_connection = True
            return gateway_error(400, "invalid Content-Length")
        if length > MAX_BODY:
            if length <= DRAIN_LIMIT:
                # Swallow the body (without keeping it) so the client, still
                # sending, gets a clean 413 rather than a broken pipe.
                while length > 0:
                    got = self.rfile.read(min(length, 65536))
                    if not got:
                        break
                    length -= len(got)
            else:
                self.close_connection = True  # the unread body desynchronises the stream
            return gateway_error(413, "request body too large")
        return self.rfile.read(length)

    def _handle(self) -> None:
        sim = self.server.simulator
        started = time.monotonic()
        split = urllib.parse.urlsplit(self.path)
        path = split.path  # kept raw: routes unquote the id segments themselves
        body = self._read_body()
        if path == "/_sim" or path.startswith("/_sim/"):
            # The control plane is neither faulted nor logged: tests drive it.
            self._write(body if isinstance(body, Response) else self._safely(
                lambda: route_control(sim, self.command, path, body)))
            return
        authorization = self.headers.get("Authorization")
        key = bearer_key(authorization)
        key_ok = sim._key_accepted(key)
        body_bytes = body if isinstance(body, bytes) else b""
        task_id = guess_task_id(path, body_bytes)

        def log(status: int) -> None:
            sim._record(started, self.command, path, task_id, status, key_ok, authorization is not None)

        # Log before writing: a client that has read its answer must find the
        # request in the log (tests assert on it right away).
        if isinstance(body, Response):
            log(body.status)
            self._write(body)
            return
        fault = sim._take_fault(path)
        if fault is not None and fault.kind == "slow":
            # Event.wait, not sleep: stop() sets the event and we bail out at once.
            if sim._stop_event.wait(fault.delay):
                self.close_connection = True
                log(0)
                return
            fault = None
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            log(0)
            return
        if fault is not None and fault.kind not in ("reset",):
            response = fault_response(fault, authorization, sim.port)
            log(response.status)
            self._write(response)
            return
        request = ApiRequest(self.command, path, urllib.parse.parse_qs(split.query), self.headers,
                             body_bytes, key, key_ok)
        response, routed_id = self._safely_api(request)
        task_id = routed_id or task_id
        if fault is not None:  # "reset": headers promise the whole body, half arrives
            log(0)
            self._write(response, limit=response.content_length // 2)
            self._reset()
            return
        log(response.status)
        self._write(response)

    def _safely(self, produce: Callable[[], Response]) -> Response:
        try:
            return produce()
        except Exception:  # a simulator bug must not kill the connection silently
            logger.exception("simulator error on %s %s", self.command, self.path)
            return gateway_error(500, "simulator internal error")

    def _safely_api(self, request: ApiRequest) -> tuple[Response, str | None]:
        try:
            return route_api(self.server.simulator, request)
        except Exception:
            logger.exception("simulator error on %s %s", self.command, self.path)
            return gateway_error(500, "simulator internal error"), None

    # ----------------------------------------------------------------- response
    def _write(self, response: Response, limit: int | None = None) -> int:
        """Write ``response`` (at most ``limit`` body bytes); return its status."""
        try:
            self.send_response(response.status)
            if response.content_type is not None:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(response.content_length))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                return response.status
            budget = response.content_length if limit is None else limit
            chunks = response.stream() if response.stream is not None else iter((response.body,))
            for chunk in chunks:
                if budget <= 0:
                    break
                piece = chunk[:budget]
                self.wfile.write(piece)
                budget -= len(piece)
        except (ConnectionError, TimeoutError, OSError):
            # The client hung up (or stop() cut the socket): nothing left to say.
            self.close_connection = True
        return response.status

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0) after a partial answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The descriptor really closes (sending RST) when finish() closes the
            # rfile/wfile that still reference it.
            self.connection.close()
        except OSError:
            pass
