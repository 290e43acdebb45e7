"""Canned HTTP answers: JSON errors in the gateway's shapes, HTML pages, streams.

A :class:`Response` is plain data; the request handler writes it. Builders here
never touch sockets, which keeps them testable and the handler small.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Response",
    "json_response",
    "gateway_error",
    "task_not_exist",
    "not_found_html",
    "nginx_error_html",
    "login_page_html",
    "request_id",
    "s3_error",
]

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass
class Response:
    """An HTTP answer to be written by the handler.

    Attributes
    ----------
    status : int
        HTTP status code.
    body : bytes
        The whole body, when ``stream`` is None.
    content_type : str or None
        Value of Content-Type; None leaves the header out.
    headers : list of (str, str)
        Extra headers (Content-Length is added by the handler).
    stream : callable or None
        Called once to get the body chunks, for bodies too big to hold in memory.
    length : int or None
        Content-Length of a streamed body.
    """

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Callable[[], Iterator[bytes]] | None = None
    length: int | None = None

    @property
    def content_length(self) -> int:
        """Number of body bytes announced in Content-Length."""
        return self.length if self.stream is not None and self.length is not None else len(self.body)


def request_id() -> str:
    """Return an id shaped like new-api's (timestamp + random characters)."""
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(6)


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    """Serialise ``payload`` as compact JSON, as the Go gateway writes it."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, JSON_TYPE, list(headers or []))


def gateway_error(status: int, message: str, code: str = "",
                  headers: list[tuple[str, str]] | None = None) -> Response:
    """Return new-api's error shape; the message ends with a request id, as live."""
    payload = {"error": {"code": code, "message": f"{message} (request id: {request_id()})",
                         "type": "comet_api_error"}}
    return json_response(status, payload, headers)


def task_not_exist(status: int = 400) -> Response:
    """Return the ``task_not_exist`` body (HTTP 400 on the feed, 404 officially)."""
    return json_response(status, {"code": "task_not_exist", "message": "task_not_exist", "data": None})


def _html(status: int, text: str) -> Response:
    return Response(status, text.encode("utf-8"), HTML_TYPE)


def not_found_html() -> Response:
    """Return the HTML 404 page a gateway serves for an unknown path."""
    return _html(404, "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
                      "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
                      "</body>\r\n</html>\r\n")


_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
            504: "Gateway Time-out", 524: "A Timeout Occurred"}


def nginx_error_html(status: int) -> Response:
    """Return the HTML error page a reverse proxy serves when the gateway is down."""
    reason = _REASONS.get(status, "Error")
    return _html(status, f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
                         f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                         "</body>\r\n</html>\r\n")


def login_page_html() -> Response:
    """Return a 200 HTML login page, what a captive portal or SSO proxy answers."""
    return _html(200, "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
                      "<form method=\"post\" action=\"/login\"><input name=\"user\">"
                      "<input name=\"password\" type=\"password\"><button>Sign in</button></form>"
                      "</body></html>")


def s3_error(status: int, code: str, message: str) -> Response:
    """Return an S3-style XML error, as a storage bucket answers a bad signed URL."""
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>")
    return Response(status, body.encode("utf-8"), "application/xml")
