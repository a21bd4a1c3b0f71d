"""KeysteadASGI driven in-process by a minimal hand-written ASGI caller."""
import asyncio
import json
import time
import urllib.parse
from typing import Any

from keystead import Engine, KeysteadASGI, Response

from conftest import API, DB, PASSWORD, Machine, unique, users_reader_token


async def request(app: Any, method: str, path: str, *, query: bytes = b"", headers=(),
                  chunks=(b"",), scheme: str = "http", raw_path: Any = None) -> dict:
    """One ASGI http request: {"status", "headers", "body"} of what the app sent."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": scheme, "path": path,
             "raw_path": raw_path, "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080"), *headers],
             "client": ("203.0.113.7", 5000), "server": ("127.0.0.1", 8080)}
    if raw_path is None:
        del scope["raw_path"]
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
               for i, c in enumerate(chunks)]
    sent: list = []

    async def receive() -> dict:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent
    assert start["type"] == "http.response.start" and body["type"] == "http.response.body"
    return {"status": start["status"], "headers": start["headers"], "body": body["body"]}


def run(app: Any, method: str, path: str, **kw: Any) -> dict:
    return asyncio.run(request(app, method, path, **kw))


def test_discovery_and_jwks(engine: Engine, tenant: str):
    app = KeysteadASGI(engine)
    r = run(app, "GET", "/.well-known/openid-configuration")
    assert r["status"] == 200 and (b"content-type", b"application/json") in r["headers"]
    assert json.loads(r["body"])["issuer"] == "http://127.0.0.1:8080/"
    r = run(app, "GET", f"/t/{tenant}/.well-known/jwks.json")
    assert r["status"] == 200 and json.loads(r["body"])["keys"][0]["kty"] == "RSA"


def test_a_token_request_in_chunks(engine: Engine, machine: Machine):
    body = urllib.parse.urlencode({"grant_type": "client_credentials",
                                   "client_id": machine.client_id,
                                   "client_secret": machine.secret, "audience": API}).encode()
    r = run(KeysteadASGI(engine), "POST", "/oauth/token",
            headers=[(b"content-type", b"application/x-www-form-urlencoded")],
            chunks=(body[:10], body[10:30], body[30:]))
    assert r["status"] == 200, r["body"]
    token = json.loads(r["body"])["access_token"]
    assert engine.tokens.verify(token, audience=API)["azp"] == machine.client_id


def test_raw_path_and_query(engine: Engine):
    token = users_reader_token(engine)
    email = f"{unique('asgi')}@example.com"
    user = engine.users.create(connection=DB, email=email, password=PASSWORD)
    auth = [(b"authorization", b"Bearer " + token.encode())]
    encoded = "/api/v2/users/" + urllib.parse.quote(user["user_id"], safe="")
    for kw in ({"raw_path": encoded.encode()}, {}):  # raw_path, or path quoted again
        r = run(KeysteadASGI(engine), "GET", "/api/v2/users/" + user["user_id"], headers=auth,
                **kw)
        assert r["status"] == 200 and json.loads(r["body"])["email"] == email
    r = run(KeysteadASGI(engine), "GET", "/api/v2/users-by-email", headers=auth,
            query=urllib.parse.urlencode({"email": email}).encode())
    assert [u["user_id"] for u in json.loads(r["body"])] == [user["user_id"]]


def test_lifespan_is_acknowledged(engine: Engine):
    async def main() -> list:
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list = []

        async def receive() -> dict:
            return inbox.pop(0)

        async def send(message: dict) -> None:
            sent.append(message["type"])

        await KeysteadASGI(engine)({"type": "lifespan"}, receive, send)
        return sent

    assert asyncio.run(main()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not engine.closed


def test_a_body_over_the_limit_is_413(engine: Engine):
    r = run(KeysteadASGI(engine, max_body_bytes=8), "POST", "/oauth/token",
            chunks=(b"12345", b"67890"))
    assert r["status"] == 413 and json.loads(r["body"])["error"] == "invalid_request"


class Slow:
    """An engine stand-in whose handle blocks its thread for a while."""

    def handle(self, method: str, path: str, **kw: Any) -> Response:
        time.sleep(0.3)
        return Response(200, [("set-cookie", "a=1"), ("set-cookie", "b=2")], kw["body"])


def test_handle_runs_off_the_event_loop():
    app = KeysteadASGI(Slow())  # type: ignore[arg-type]

    async def main() -> tuple:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        results = await asyncio.gather(*(request(app, "POST", "/", chunks=(b"x%d" % i,))
                                         for i in range(3)))
        elapsed = time.monotonic() - started
        task.cancel()
        return results, ticks, elapsed

    results, ticks, elapsed = asyncio.run(main())
    assert [r["body"] for r in results] == [b"x0", b"x1", b"x2"]
    assert [v for k, v in results[0]["headers"] if k == b"set-cookie"] == [b"a=1", b"b=2"]
    assert ticks >= 10 and elapsed < 0.8  # the loop kept running; the three ran in parallel


def test_a_websocket_is_refused(engine: Engine):
    async def main() -> list:
        sent: list = []

        async def receive() -> dict:
            return {"type": "websocket.connect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await KeysteadASGI(engine)({"type": "websocket", "path": "/"}, receive, send)
        return sent

    assert asyncio.run(main()) == [{"type": "websocket.close", "code": 1008}]
