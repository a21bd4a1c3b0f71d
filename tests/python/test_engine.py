"""Opening and closing engines, the loaded library, and raw handle/manage calls."""
import os
import subprocess
import sys

import pytest

import keystead
from keystead import Engine, InvalidError, KeysteadError, NotFoundError

from conftest import settings


def test_the_installed_package_is_under_test():
    """tests/python/run installs the package into a venv: the source tree must not shadow it."""
    assert keystead.__file__.startswith(sys.prefix), (keystead.__file__, sys.prefix)
    assert keystead.__version__ == "0.1.0"
    assert keystead.ABI_VERSION >= 2 and keystead.LIBRARY_VERSION


def test_open_close(tmp_path):
    engine = Engine(settings(tmp_path))
    assert not engine.closed and "open" in repr(engine)
    assert engine.manage("GET", "/tenants/settings")["friendly_name"]
    engine.close()
    assert engine.closed and "closed" in repr(engine)
    engine.close()  # idempotent


def test_context_manager_closes(tmp_path):
    with Engine(data_dir=str(tmp_path), mode="dev", master_key="11" * 32) as engine:
        assert engine.tenants.get("control_plane")["is_control_plane"] is True
    assert engine.closed
    with pytest.raises(KeysteadError) as e:
        engine.users.list()
    assert e.value.code == -1 and "closed" in e.value.message


@pytest.mark.parametrize("call", [
    lambda e: e.manage("GET", "/users"),
    lambda e: e.handle("GET", "/.well-known/openid-configuration"),
    lambda e: e.tokens.verify("a.b.c"),
    lambda e: e.tokens.issue(grant_type="client_credentials"),
    lambda e: e.check_password("a@example.com", "pw"),
])
def test_a_closed_engine_raises_and_never_crashes(tmp_path, call):
    engine = Engine(settings(tmp_path))
    engine.close()
    with pytest.raises(KeysteadError, match="closed"):
        call(engine)


def test_keyword_settings_win_over_the_mapping(tmp_path):
    with Engine(settings(tmp_path / "a"), public_url="https://id.example.com") as engine:
        r = engine.handle("GET", "/.well-known/openid-configuration",
                          headers={"host": "id.example.com"}, secure=True)
        assert r.json()["issuer"] == "https://id.example.com/"


def test_invalid_settings_are_invalid_error(tmp_path):
    with pytest.raises(InvalidError, match="no_such_setting") as e:
        Engine(settings(tmp_path), no_such_setting=1)
    assert isinstance(e.value, ValueError) and e.value.code == -2


def test_handle_answers_like_the_server(engine):
    r = engine.handle("GET", "/.well-known/openid-configuration",
                      headers=[("Host", "127.0.0.1:8080")])
    assert r.status == 200 and r.header("Content-Type").startswith("application/json")
    assert r.json()["issuer"] == "http://127.0.0.1:8080/"
    missing = engine.handle("GET", "/t/no-such-tenant/.well-known/openid-configuration")
    assert missing.status == 404


def test_handle_takes_the_query_separately_or_in_the_path(engine):
    by_arg = engine.handle("GET", "/authorize", query="client_id=nope&response_type=code")
    in_path = engine.handle("GET", "/authorize?client_id=nope&response_type=code")
    assert by_arg.status == in_path.status == 400
    for r in (by_arg, in_path):  # an HTML error page, UTF-8 ("Error · Control Plane")
        text = r.body.decode("utf-8")
        assert "Unknown client: nope" in text and "Error \u00b7 Control Plane" in text
    missing = engine.handle("GET", "/authorize").body.decode()
    assert "Missing required parameter: client_id" in missing


def test_handle_refuses_a_body_that_is_not_utf8(engine):
    with pytest.raises(InvalidError, match="UTF-8"):
        engine.handle("POST", "/oauth/token", body=b"\xff\xfe")


def test_manage_returns_json_or_none(engine):
    role = engine.manage("POST", "/roles", {"name": "manage-raw"})
    assert engine.manage("GET", "/roles/" + role["id"]) == role
    assert engine.manage("DELETE", "/roles/" + role["id"]) is None
    with pytest.raises(NotFoundError):
        engine.manage("GET", "/roles/" + role["id"])


def test_manage_encodes_query_values(engine):
    """name_filter holds a space; include_totals is a boolean."""
    engine.roles.create(name="Query Test Role")
    page = engine.manage("GET", "/roles", query={"name_filter": "Query Test Role",
                                                 "include_totals": True, "per_page": 5})
    assert page["total"] == 1 and page["roles"][0]["name"] == "Query Test Role"
    assert engine.manage("GET", "/roles?per_page=5", query="name_filter=Query%20Test%20Role")[0][
        "name"] == "Query Test Role"


def test_nul_characters_never_reach_c(engine):
    with pytest.raises(InvalidError, match="NUL"):
        engine.check_password("a@example.com", "secret\0junk")


def test_keystead_library_chooses_the_library(tmp_path):
    """KEYSTEAD_LIBRARY wins; a library that cannot be loaded is an ImportError."""
    code = "import keystead; print(keystead.LIBRARY_PATH)"
    env = dict(os.environ, KEYSTEAD_LIBRARY=keystead.LIBRARY_PATH)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert out.stdout.strip() == keystead.LIBRARY_PATH
    env["KEYSTEAD_LIBRARY"] = str(tmp_path / "libnothing.so")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode != 0 and "ImportError: cannot load libkeystead" in out.stderr
