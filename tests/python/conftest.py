"""Fixtures for the keystead package's tests: engines on temporary data directories, a child
tenant, a machine client with an API, and a WSGI server on a free 127.0.0.1 port.

The suite runs against the installed package (tests/python/run installs it into a
fresh venv); KEYSTEAD_* variables of the caller's environment other than KEYSTEAD_LIBRARY are
ignored so they cannot change the engines' settings.
"""
from __future__ import annotations

import io
import os
import socket
import threading
import uuid
from typing import Any, Callable, Iterator, Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import setup_testing_defaults

import pytest

from keystead import Engine

for _name in [n for n in os.environ if n.startswith("KEYSTEAD_") and n != "KEYSTEAD_LIBRARY"]:
    del os.environ[_name]

MASTER_KEY = "00" * 32
PUBLIC_URL = "http://127.0.0.1:8080"
DB = "Username-Password-Authentication"
PASSWORD = "Correct-Horse-9-battery"
MGMT_AUDIENCE = "urn:keystead:management"
API = "https://orders.example"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def settings(data_dir: Any, public_url: str = PUBLIC_URL) -> dict[str, Any]:
    return {"data_dir": str(data_dir), "mode": "dev", "public_url": public_url,
            "master_key": MASTER_KEY}


@pytest.fixture
def make_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Engine]]:
    """Opens engines on fresh data directories; closes them after the test."""
    opened: list[Engine] = []

    def make(**extra: Any) -> Engine:
        engine = Engine(settings(tmp_path_factory.mktemp("data")), **extra)
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One engine for a test module."""
    with Engine(settings(tmp_path_factory.mktemp("data"))) as e:
        yield e


@pytest.fixture(scope="module")
def tenant(engine: Engine) -> str:
    """A child tenant of the module's engine."""
    tid = unique("acme")
    engine.tenants.create(id=tid, friendly_name="Acme")
    return tid


class Machine:
    """A client_credentials client of one tenant with a grant for the API `API`."""

    def __init__(self, engine: Engine, tenant: Optional[str], scopes: tuple[str, ...]) -> None:
        self.engine, self.tenant = engine, tenant
        self.client = engine.clients.create(name=unique("m2m"), app_type="non_interactive",
                                            tenant=tenant)
        self.client_id, self.secret = self.client["client_id"], self.client["client_secret"]
        engine.client_grants.create(client_id=self.client_id, audience=API, scope=list(scopes),
                                    tenant=tenant)

    def token(self, audience: str = API) -> str:
        return self.engine.tokens.issue(
            grant_type="client_credentials", client_id=self.client_id,
            client_secret=self.secret, audience=audience, tenant=self.tenant)["access_token"]


@pytest.fixture(scope="module")
def machine(engine: Engine) -> Machine:
    """A control-plane machine client allowed read:orders on `API` (defined with write:orders)."""
    if not any(rs["identifier"] == API for rs in engine.resource_servers.list()):
        engine.resource_servers.create(name="Orders", identifier=API, scopes=[
            {"value": "read:orders"}, {"value": "write:orders"}])
    return Machine(engine, None, ("read:orders",))


def users_reader_token(engine: Engine) -> str:
    """A control-plane Management API token of a new machine client allowed read:users."""
    m2m = engine.clients.create(name=unique("reader"), app_type="non_interactive")
    engine.client_grants.create(client_id=m2m["client_id"], audience=MGMT_AUDIENCE,
                                scope=["read:users"])
    token: str = engine.tokens.issue(grant_type="client_credentials", client_id=m2m["client_id"],
                                     client_secret=m2m["client_secret"],
                                     audience=MGMT_AUDIENCE)["access_token"]
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(app: Any, method: str, path: str, query: str = "", body: bytes = b"",
         headers: Optional[dict] = None, **environ: Any) -> tuple[str, list, bytes]:
    """Calls a WSGI app in-process: (status line, headers, body)."""
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
           "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
           "HTTP_HOST": "127.0.0.1:8080", "REMOTE_ADDR": "203.0.113.7", **environ}
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    setup_testing_defaults(env)
    seen: dict = {}

    def start_response(status: str, response_headers: list, exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, response_headers

    chunks = app(env, start_response)
    return seen["status"], seen["headers"], b"".join(chunks)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadedServer(WSGIServer):
    """Serves each connection in a thread of its own (a login page and a slow password hash
    must not stall the next request)."""

    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(target=self._serve, args=(request, client_address), daemon=True).start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """serve(app, port=None) runs a WSGI app with wsgiref on 127.0.0.1; returns its base URL."""
    servers: list[WSGIServer] = []

    def start(app: Any, port: Optional[int] = None) -> str:
        server = make_server("127.0.0.1", port or 0, app, server_class=_ThreadedServer,
                             handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
