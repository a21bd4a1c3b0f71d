"""Fixtures for the authlib client tests: one keystead server for the session, started with the
tests/http helpers (kshttp: port 0, fresh data dir, bootstrap client from the environment)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "http"))

from kshttp import Server, servers_in_test, STOP_TIMEOUT  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in list(servers_in_test):
            rep.sections.append((f"{srv.name} logs", srv.logs()))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("keystead")
    srv = Server(root / "data", root / "logs", name="authlib-server")
    yield srv
    servers_in_test[:] = [srv]
    code = srv.stop()
    srv.close_files()
    if code is None:
        srv.kill()
    assert code == 0, f"server did not exit 0 within {STOP_TIMEOUT}s of SIGTERM " \
                      f"(exit code {code})\n{srv.logs()}"


@pytest.fixture(autouse=True)
def _track_server(server):
    servers_in_test[:] = [server]
    yield
