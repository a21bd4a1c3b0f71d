"""Fixtures for the HTTP suite: a session-wide keystead server, a factory for servers with
special configuration, and child tenants. The helpers themselves live in kshttp.py."""
import pytest

from kshttp import Server, servers_in_test, unique_id, STOP_TIMEOUT

# --- pytest plumbing ---------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in list(servers_in_test):
            rep.sections.append((f"{srv.name} logs", srv.logs()))


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
    root = tmp_path_factory.mktemp("keystead")
    srv = Server(root / "data", root / "logs", name="session-server")
    yield srv
    servers_in_test[:] = [srv]
    code = srv.stop()
    srv.close_files()
    if code is None:
        srv.kill()
    assert code == 0, f"session server did not exit 0 within {STOP_TIMEOUT}s of SIGTERM " \
                      f"(exit code {code})\n{srv.logs()}"


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
