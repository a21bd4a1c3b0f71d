"""The keystead CLI works on the data dir directly; a running server sees its changes."""
import json

import pytest

from kshttp import run_cli, unique_id


def run_json(data_dir, *args):
    p = run_cli(data_dir, *args)
    assert p.returncode == 0, f"keystead {' '.join(args)} exited {p.returncode}\n" \
                              f"stdout: {p.stdout}\nstderr: {p.stderr}"
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"keystead {' '.join(args)} did not print JSON on stdout:\n{p.stdout!r}"
                    f"\nstderr: {p.stderr}")


def ids_of(listing):
    items = listing["tenants"] if isinstance(listing, dict) else listing
    return {t["id"] for t in items}


def test_help_exits_0(tmp_path):
    p = run_cli(tmp_path, "--help")
    assert p.returncode == 0, p.stderr
    text = p.stdout + p.stderr
    for word in ("serve", "tenant", "client", "migrate"):
        assert word in text, f"--help does not mention {word}:\n{text}"


def test_unknown_command_fails(tmp_path):
    p = run_cli(tmp_path, "no-such-command")
    assert p.returncode != 0
    assert p.stderr.strip(), "an unknown command should say what is wrong on stderr"


def test_serve_rejects_unknown_flag(tmp_path):
    p = run_cli(tmp_path, "serve", "--no-such-flag", "x", timeout=20)
    assert p.returncode != 0
    assert "no-such-flag" in p.stderr


def test_migrate(tmp_path):
    p = run_cli(tmp_path / "data", "migrate")
    assert p.returncode == 0, p.stderr
    p = run_cli(tmp_path / "data", "migrate")
    assert p.returncode == 0, p.stderr


def test_tenant_create_list_show_delete(tmp_path):
    data = tmp_path / "data"
    created = run_json(data, "tenant", "create", "cli-t", "--name", "CLI")
    assert created["id"] == "cli-t"
    assert created["friendly_name"] == "CLI"
    assert "cli-t" in ids_of(run_json(data, "tenant", "list"))
    shown = run_json(data, "tenant", "show", "cli-t")
    assert shown["id"] == "cli-t" and shown["friendly_name"] == "CLI"

    p = run_cli(data, "tenant", "create", "cli-t", "--name", "Again")
    assert p.returncode != 0, "creating a duplicate tenant should fail"
    p = run_cli(data, "tenant", "create", "Bad_ID!", "--name", "Bad")
    assert p.returncode != 0, "an invalid tenant id should fail"
    p = run_cli(data, "tenant", "show", "no-such-tenant")
    assert p.returncode != 0

    p = run_cli(data, "tenant", "delete", "cli-t")
    assert p.returncode == 0, p.stderr
    assert "cli-t" not in ids_of(run_json(data, "tenant", "list"))


def test_client_create_prints_secret(tmp_path):
    data = tmp_path / "data"
    run_json(data, "tenant", "create", "cli-c", "--name", "Clients")
    client = run_json(data, "client", "create", "--tenant", "cli-c", "--name", "x")
    assert client["name"] == "x"
    assert len(client["client_id"]) == 32
    assert len(client["client_secret"]) == 64


def test_running_server_sees_cli_changes(start_server, tmp_path):
    data = tmp_path / "shared"
    srv = start_server(data_dir=data, name="cli-server")
    tid = unique_id("cli")
    created = run_json(data, "tenant", "create", tid, "--name", "From CLI")
    assert created["id"] == tid

    r = srv.api("GET", f"/tenants/{tid}")
    assert r.status_code == 200, r.text
    assert r.json()["friendly_name"] == "From CLI"
    r = srv.req("GET", "/.well-known/openid-configuration", tenant=tid)
    assert r.status_code == 200, r.text

    # A client made by the CLI can authenticate at the running server.
    client = run_json(data, "client", "create", "--tenant", tid, "--name", "cli-client")
    grant = srv.api("POST", "/client-grants", tenant=tid, json={
        "client_id": client["client_id"], "audience": "urn:keystead:management",
        "scope": ["read:users"]})
    assert grant.status_code == 201, grant.text
    r = srv.client_credentials(client["client_id"], client["client_secret"], tenant=tid)
    assert r.status_code == 200, r.text

    # And the CLI sees what the server made.
    other = unique_id("srv")
    assert srv.api("POST", "/tenants", json={"id": other, "friendly_name": "From server"}) \
        .status_code == 201
    assert other in ids_of(run_json(data, "tenant", "list"))

    # Deleting through the CLI takes the tenant away from the server too.
    assert run_cli(data, "tenant", "delete", tid).returncode == 0
    assert srv.api("GET", f"/tenants/{tid}").status_code == 404
    assert srv.req("GET", "/.well-known/openid-configuration", tenant=tid).status_code == 404


@pytest.mark.parametrize("env,needle", [
    ({"KEYSTEAD_MODE": "staging"}, "KEYSTEAD_MODE"),
    ({"KEYSTEAD_MODE": "prod"}, "KEYSTEAD_MASTER_KEY"),
    ({"KEYSTEAD_MASTER_KEY": "not-hex"}, "KEYSTEAD_MASTER_KEY"),
    ({"KEYSTEAD_CONTROL_PLANE_ID": "Bad_ID"}, "KEYSTEAD_CONTROL_PLANE_ID"),
    ({"KEYSTEAD_DEFAULT_ISOLATION": "separate"}, "KEYSTEAD_DEFAULT_ISOLATION"),
])
def test_serve_refuses_bad_configuration(tmp_path, env, needle):
    p = run_cli(tmp_path / "data", "serve", "--listen", "127.0.0.1:0", env=env, timeout=20)
    assert p.returncode != 0, p.stdout
    assert "listening" not in p.stdout
    assert needle in p.stderr, p.stderr


def tenant_file(data_dir, tid):
    return data_dir / "tenants" / f"{tid}.db"


def test_tenant_move_on_a_stopped_data_dir(tmp_path):
    data = tmp_path / "data"
    run_json(data, "tenant", "create", "mv-t", "--name", "Mover")
    client = run_json(data, "client", "create", "--tenant", "mv-t", "--name", "kept")

    moved = run_json(data, "tenant", "move", "mv-t", "--isolation", "database")
    assert moved["id"] == "mv-t" and moved["isolation"] == "database"
    assert tenant_file(data, "mv-t").exists()
    assert run_json(data, "tenant", "show", "mv-t")["isolation"] == "database"
    # The tenant keeps working where it now is.
    again = run_json(data, "client", "create", "--tenant", "mv-t", "--name", "second")
    assert again["client_id"] != client["client_id"]

    moved = run_json(data, "tenant", "move", "mv-t", "--isolation", "shared")
    assert moved["isolation"] == "shared"
    assert not tenant_file(data, "mv-t").exists()
    assert run_json(data, "tenant", "move", "mv-t", "--isolation", "shared")["isolation"] == "shared"

    created = run_json(data, "tenant", "create", "mv-d", "--isolation", "database")
    assert created["isolation"] == "database" and tenant_file(data, "mv-d").exists()
    assert run_cli(data, "tenant", "delete", "mv-d").returncode == 0
    assert not tenant_file(data, "mv-d").exists()

    for args, code in [(("mv-t", "--isolation", "bogus"), 1),
                       (("no-such", "--isolation", "shared"), 1),
                       (("control_plane", "--isolation", "database"), 1),
                       (("mv-t",), 2), (("--isolation", "shared"), 2)]:
        p = run_cli(data, "tenant", "move", *args)
        assert p.returncode == code, f"tenant move {args}: {p.returncode}\n{p.stderr}"
        assert p.stderr.strip()


def test_tenant_move_on_a_running_servers_data_dir(start_server, tmp_path):
    from test_login import App, query
    import requests

    data = tmp_path / "live"
    srv = start_server(data_dir=data, name="move-server")
    tid = unique_id("mv")
    assert srv.api("POST", "/tenants", json={"id": tid, "isolation": "shared"}).status_code == 201
    app = App(srv, tid)
    code, verifier = app.code()
    rt = app.exchange(code, verifier).json()["refresh_token"]

    def still_signed_in():
        nonlocal rt
        r = requests.post(app.url("/oauth/token"), data={
            "grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": rt})
        assert r.status_code == 200, r.text
        rt = r.json()["refresh_token"]
        r, _, _ = app.authorize(prompt="none")
        assert r.status_code == 302 and "code" in query(r.headers["Location"]), r.text

    users = []
    for to in ("database", "shared", "database"):
        assert run_json(data, "tenant", "move", tid, "--isolation", to)["isolation"] == to
        assert tenant_file(data, tid).exists() == (to == "database")
        assert srv.api("GET", f"/tenants/{tid}").json()["isolation"] == to
        still_signed_in()
        # The server writes where the data now is, and nothing written before is lost.
        r = srv.api("POST", "/users", tenant=tid, json={
            "email": f"after-{to}-{len(users)}@example.com", "password": "Correct-Horse-9-battery",
            "connection": "Username-Password-Authentication"})
        assert r.status_code == 201, r.text
        users.append(r.json()["user_id"])
        listed = {u["user_id"] for u in srv.api("GET", "/users", tenant=tid).json()}
        assert set(users) | {app.user_id} <= listed
    assert run_cli(data, "tenant", "delete", tid).returncode == 0
    assert not tenant_file(data, tid).exists()
    assert srv.api("GET", f"/tenants/{tid}").status_code == 404
