"""Fixtures for the authlib client tests: one keystead server for the session, started with the
tests/http helpers (kshttp: port 0, fresh data dir, bootstrap client from the environment)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "http"))

from kshttp import attach_server_logs, servers_in_test, session_server  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    attach_server_logs(outcome.get_result())


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    yield from session_server(tmp_path_factory, "authlib-server")


@pytest.fixture(autouse=True)
def _track_server(server):
    servers_in_test[:] = [server]
    yield
