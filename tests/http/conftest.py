"""Fixtures for the HTTP suite: a session-wide keystead server, a factory for servers with
special configuration, and child tenants. The helpers themselves live in kshttp.py."""
import pytest

from kshttp import Server, attach_server_logs, servers_in_test, session_server, unique_id

# --- pytest plumbing ---------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    attach_server_logs(outcome.get_result())


@pytest.fixture(autouse=True)
def _track_servers(request):
    """Shows, on failure, the logs of the servers a test used: the session server and the
    servers the test started."""
    servers_in_test.clear()
    if "server" in request.fixturenames:
        servers_in_test.append(request.getfixturevalue("server"))
    yield
    servers_in_test.clear()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the whole session."""
    yield from session_server(tmp_path_factory, "session-server")


@pytest.fixture
def start_server(tmp_path):
    """Factory for servers with special configuration: start_server(env={...}, args=[...],
    tls=False, data_dir=None). Servers still running at the end are killed."""
    started = []

    def start(env=None, args=(), tls=False, data_dir=None, name=None):
        n = len(started)
        name = name or f"server{n}"
        srv = Server(data_dir or (tmp_path / f"data{n}"), tmp_path / "logs", env=env, args=args,
                     tls=tls, name=name)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.kill()
        srv.close_files()


@pytest.fixture(scope="session")
def new_tenant(server):
    """Factory: creates a fresh child tenant through the Management API and returns its id."""
    def create(friendly_name=None):
        tid = unique_id()
        r = server.api("POST", "/tenants", json={"id": tid, "friendly_name": friendly_name or tid})
        assert r.status_code == 201, f"creating tenant {tid}: {r.status_code} {r.text}"
        return tid
    return create


@pytest.fixture(scope="session")
def acme(server):
    """The child tenant "acme", shared by the tests that only add to it."""
    r = server.api("POST", "/tenants", json={"id": "acme", "friendly_name": "Acme"})
    assert r.status_code == 201, f"creating tenant acme: {r.status_code} {r.text}"
    return "acme"
