"""Serving Keystead from an ASGI server (uvicorn, hypercorn, …).

:class:`KeysteadASGI` serves every Keystead endpoint through :meth:`Engine.handle`. The call
runs in a worker thread (``asyncio.to_thread``): it may hash a password for a second, and the
event loop must not wait for it.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import quote

from .engine import Engine, Response
from .wsgi import MAX_BODY_BYTES, PATH_SAFE, error_response, forward

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class KeysteadASGI:
    """An ASGI 3 app serving all of Keystead through `engine`.

    ``http`` requests: the method, ``raw_path`` (or ``path`` percent-encoded), the query
    string, every header, the whole body (at most `max_body_bytes`, else 413), the client's
    address and HTTPS when the scheme is ``https``. ``lifespan`` events are acknowledged (the
    engine belongs to the host, which opens and closes it); a ``websocket`` is refused.
    """

    def __init__(self, engine: Engine, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.engine, self.max_body_bytes = engine, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._send(send, await self._respond(scope, receive))
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return error_response(400, "invalid_request", "The client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return error_response(413, "invalid_request", "Request body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw_path = scope.get("raw_path")  # some servers leave the query on it
        path = (_text(raw_path.partition(b"?")[0]) if raw_path
                else quote(scope["path"], safe=PATH_SAFE))
        headers = [(_text(k).lower(), _text(v)) for k, v in scope.get("headers", [])]
        client = scope.get("client")
        return await asyncio.to_thread(
            forward, self.engine, scope["method"], path, _text(scope.get("query_string", b"")),
            headers, b"".join(chunks), client[0] if client else "",
            scope.get("scheme") == "https")

    @staticmethod
    async def _send(send: Send, response: Response) -> None:
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("utf-8"))
                                for k, v in response.headers]})
        await send({"type": "http.response.body", "body": response.body})
