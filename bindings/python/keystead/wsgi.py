"""Serving Keystead from a WSGI server (PEP 3333).

- :class:`KeysteadWSGI` is a WSGI app that serves every Keystead endpoint (discovery, JWKS,
  /authorize, the hosted login pages, /oauth/token, the Management API, …) through
  :meth:`Engine.handle`.
- :class:`Dispatcher` puts the host's own apps next to it: requests whose path is one of the
  given prefixes, or below one, go to the host app for it (the longest prefix wins, and it is
  moved from ``PATH_INFO`` to ``SCRIPT_NAME`` as WSGI mounting does); everything else goes to
  Keystead.

    app = Dispatcher(engine, {"/portal": portal_app})
    wsgiref.simple_server.make_server("127.0.0.1", 8080, app).serve_forever()

Keystead resolves tenants and issuers from the request (``Host``, ``/t/{tenant}/…``), so serve
it at the root of the public URL the engine was opened with.
"""
from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Callable, Iterable, Mapping, Optional
from urllib.parse import quote
from wsgiref.util import is_hop_by_hop

from .engine import Engine, Response
from .errors import InvalidError

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: The largest request body the adapters read, as Keystead's own server (1 MiB).
MAX_BODY_BYTES = 1 << 20
#: Characters left as they are when a decoded path is percent-encoded again (RFC 3986 pchar).
PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _wire(text: str) -> str:
    """A WSGI "native string" (bytes as latin-1) as the text its bytes encode in UTF-8."""
    return text.encode("latin-1").decode("utf-8", "replace")


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def error_response(status: int, error: str, description: str) -> Response:
    """A JSON error answered by an adapter itself (OAuth's error shape)."""
    body = json.dumps({"error": error, "error_description": description}).encode()
    return Response(status, [("content-type", "application/json")], body)


def forward(engine: Engine, method: str, path: str, query: str, headers: list[tuple[str, str]],
            body: bytes, remote_addr: str, secure: bool) -> Response:
    """:meth:`Engine.handle`, with a request body that is not UTF-8 answered 400."""
    try:
        return engine.handle(method, path, query=query, headers=headers, body=body,
                             remote_addr=remote_addr, secure=secure)
    except InvalidError as e:
        return error_response(400, "invalid_request", e.message)


class KeysteadWSGI:
    """A WSGI app serving all of Keystead through `engine`.

    The request: ``REQUEST_METHOD``; ``PATH_INFO`` percent-encoded again (a server decodes it,
    so ``%2F`` arrives as ``/``); ``QUERY_STRING``; every ``HTTP_*`` variable plus
    ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` as headers; the body (at most `max_body_bytes`,
    else 413); ``REMOTE_ADDR``; HTTPS when ``wsgi.url_scheme`` is ``https``. Every response
    header is passed on, each ``Set-Cookie`` separately; hop-by-hop headers are left to the
    server.
    """

    def __init__(self, engine: Engine, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.engine, self.max_body_bytes = engine, max_body_bytes

    def __call__(self, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        response = self._respond(environ)
        headers = [(k, _latin1(v)) for k, v in response.headers if not is_hop_by_hop(k)]
        start_response(status_line(response.status), headers)
        return [response.body]

    def _respond(self, environ: dict[str, Any]) -> Response:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "invalid_request", "Invalid Content-Length")
        if length > self.max_body_bytes:
            return error_response(413, "invalid_request", "Request body too large")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe=PATH_SAFE) or "/"
        return forward(self.engine, environ["REQUEST_METHOD"], path,
                       _wire(environ.get("QUERY_STRING", "")), request_headers(environ), body,
                       environ.get("REMOTE_ADDR", ""), environ.get("wsgi.url_scheme") == "https")


def request_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The request headers of a WSGI environ, names in lower case."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), _wire(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower(), _wire(value)))
    return headers


def _latin1(value: str) -> str:
    """A response header value as a WSGI native string: its UTF-8 bytes as latin-1."""
    return value.encode("utf-8").decode("latin-1")


class Dispatcher:
    """A WSGI app sending the paths under `routes`' prefixes to the host's apps and
    everything else to Keystead (:class:`KeysteadWSGI`).

    ``Dispatcher(engine, {"/portal": portal_app})``: ``/portal`` and ``/portal/…`` go to
    ``portal_app`` with ``SCRIPT_NAME`` ending in ``/portal`` and ``PATH_INFO`` the rest
    (``/portal/users`` → ``/users``); ``/portalx`` and every other path go to Keystead.
    """

    def __init__(self, engine: Engine, routes: Optional[Mapping[str, WSGIApp]] = None, *,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.keystead = KeysteadWSGI(engine, max_body_bytes=max_body_bytes)
        self.routes: list[tuple[str, WSGIApp]] = []
        for prefix, app in (routes or {}).items():
            if not prefix.startswith("/") or prefix == "/":
                raise ValueError(f"a route prefix starts with / and is not / alone: {prefix!r}")
            self.routes.append((prefix.rstrip("/"), app))
        self.routes.sort(key=lambda route: len(route[0]), reverse=True)

    def __call__(self, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, app in self.routes:
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return app(environ, start_response)
        return self.keystead(environ, start_response)
