"""Export and import of a tenant (docs/operations.md, "Export and import"): over the Management
API for platform staff only, and through the CLI on the data dir; a round trip through delete
keeps passwords, refresh tokens, sessions and signing keys."""
import json

import requests

from kshttp import assert_error, run_cli, unique_id
from portal_helpers import client_token, create_m2m_client, staff_token, tenant_management_token
from test_login import App, query

FORMAT = "keystead-tenant-export"


def still_signed_in(app, rt):
    """The refresh token still works (returns its successor) and the browser's session gives a
    code without a prompt."""
    r = requests.post(app.url("/oauth/token"), data={
        "grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": rt})
    assert r.status_code == 200, r.text
    r, _, _ = app.authorize(prompt="none")
    assert r.status_code == 302 and "code" in query(r.headers["Location"]), r.text


def kids(server, tenant):
    r = server.req("GET", "/.well-known/jwks.json", tenant=tenant)
    assert r.status_code == 200, r.text
    return sorted(k["kid"] for k in r.json()["keys"])


def test_round_trip_over_the_api(server, new_tenant):
    tid = new_tenant()
    app = App(server, tid)
    code, verifier = app.code()
    rt = app.exchange(code, verifier).json()["refresh_token"]
    keys = kids(server, tid)

    r = server.api("GET", f"/tenants/{tid}/export")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["format"] == FORMAT and doc["version"] == 1
    assert doc["tenant"]["id"] == tid and doc["organization"]["name"] == tid
    kinds = {rec["kind"] for rec in doc["records"]}
    assert {"user", "client", "signing_key", "session", "refresh_token"} <= kinds, kinds
    assert not kinds & {"auth_code", "login_tx"}, kinds

    assert server.api("DELETE", f"/tenants/{tid}").status_code == 204
    assert server.api("GET", f"/tenants/{tid}").status_code == 404

    r = server.api("POST", "/tenants/import", json=doc)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == tid and r.json()["status"] == "active"
    assert server.api("GET", f"/tenants/{tid}").status_code == 200
    assert kids(server, tid) == keys
    still_signed_in(app, rt)
    # The password still signs in on the hosted page of a fresh browser.
    app.browser = requests.Session()
    code, verifier = app.code()
    assert app.exchange(code, verifier).status_code == 200

    # Importing over the live tenant: 409, nothing changed.
    assert_error(server.api("POST", "/tenants/import", json=doc), 409)
    assert server.api("GET", f"/tenants/{tid}/export").json()["records"][0] == doc["records"][0]


def test_bad_documents_are_400(server, new_tenant):
    tid = new_tenant()
    doc = server.api("GET", f"/tenants/{tid}/export").json()
    assert server.api("DELETE", f"/tenants/{tid}").status_code == 204
    for bad in ({}, {**doc, "format": "other"}, {**doc, "version": 7},
                {**doc, "records": "nope"}, {**doc, "tenant": {**doc["tenant"], "id": "Bad!"}}):
        assert_error(server.api("POST", "/tenants/import", json=bad), 400)
        assert server.api("GET", f"/tenants/{tid}").status_code == 404
    r = server.api("POST", "/tenants/import", data="not json",
                   headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert server.api("POST", "/tenants/import", json=doc, params={"isolation": "x"}) \
        .status_code == 400
    assert server.api("POST", "/tenants/import", json=doc).status_code == 201


def test_only_platform_staff(server, new_tenant):
    tid = new_tenant()
    doc = server.api("GET", f"/tenants/{tid}/export").json()
    # A control-plane token with the scopes but without admin:organizations.
    cid, secret = create_m2m_client(server, None, ("read:tenants", "create:tenants"))
    plain = client_token(server, cid, secret)
    # The tenant's own management token.
    own = tenant_management_token(server, tid)
    for token in (plain, own, None):
        status = 401 if token is None else 403
        assert_error(server.api("GET", f"/tenants/{tid}/export", token=token), status)
        assert_error(server.api("POST", "/tenants/import", token=token, json=doc), status)
    # Staff need the route's scope too.
    reader = staff_token(server, ("read:tenants",))
    assert server.api("GET", f"/tenants/{tid}/export", token=reader).status_code == 200
    assert_error(server.api("POST", "/tenants/import", token=reader, json=doc), 403)
    # The routes live on the control plane only.
    assert_error(server.api("GET", f"/tenants/{tid}/export", tenant=tid), 404)
    assert_error(server.api("GET", "/tenants/control_plane/export"), 403)
    assert_error(server.api("GET", f"/tenants/{unique_id('none')}/export"), 404)


def run_ok(data, *args):
    p = run_cli(data, *args)
    assert p.returncode == 0, f"keystead {' '.join(args)}: {p.returncode}\n{p.stderr}"
    return p


def test_cli_export_and_import(tmp_path):
    data = tmp_path / "data"
    run_ok(data, "tenant", "create", "exp-t", "--name", "Exported")
    client = json.loads(run_ok(data, "client", "create", "--tenant", "exp-t", "--name", "kept")
                        .stdout)
    out = tmp_path / "exp-t.json"
    assert run_ok(data, "tenant", "export", "exp-t", "--output", str(out)).stdout == ""
    doc = json.loads(out.read_text())
    assert doc["format"] == FORMAT and doc["tenant"]["id"] == "exp-t"
    from_stdout = json.loads(run_ok(data, "tenant", "export", "exp-t").stdout)
    assert from_stdout["records"] == doc["records"]

    p = run_cli(data, "tenant", "import", str(out))
    assert p.returncode == 1 and "409" in p.stderr, p.stderr
    run_ok(data, "tenant", "delete", "exp-t")
    view = json.loads(run_ok(data, "tenant", "import", str(out), "--isolation", "database",
                             "--status", "suspended").stdout)
    assert view["id"] == "exp-t" and view["isolation"] == "database"
    assert view["status"] == "suspended"
    assert (data / "tenants" / "exp-t.db").exists()
    again = json.loads(run_ok(data, "tenant", "export", "exp-t").stdout)
    assert [r for r in again["records"] if r["kind"] == "client"] == \
        [r for r in doc["records"] if r["kind"] == "client"]
    assert client["client_id"] in {r["id"] for r in again["records"] if r["kind"] == "client"}

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args, code in [(("import", str(bad)), 1), (("import", str(tmp_path / "missing.json")), 1),
                       (("export", "no-such"), 1), (("export",), 2), (("import",), 2),
                       (("export", "exp-t", "--bogus", "x"), 2)]:
        p = run_cli(data, "tenant", *args)
        assert p.returncode == code, f"tenant {args}: {p.returncode}\n{p.stderr}"
        assert p.stderr.strip()
    help_text = run_cli(data, "--help").stdout
    assert "tenant export" in help_text and "tenant import" in help_text


def test_cli_imports_what_the_http_body_limit_refuses(start_server, tmp_path):
    """KEYSTEAD_MAX_BODY_BYTES caps HTTP imports; the CLI next to the running server does not."""
    data = tmp_path / "live"
    srv = start_server(data_dir=data, env={"KEYSTEAD_MAX_BODY_BYTES": "4096"}, name="export-server")
    tid = unique_id("big")
    assert srv.api("POST", "/tenants", json={"id": tid}).status_code == 201
    app = App(srv, tid)
    code, verifier = app.code()
    rt = app.exchange(code, verifier).json()["refresh_token"]
    out = tmp_path / "big.json"
    run_ok(data, "tenant", "export", tid, "--output", str(out))
    assert out.stat().st_size > 4096
    assert srv.api("DELETE", f"/tenants/{tid}").status_code == 204

    r = srv.api("POST", "/tenants/import", data=out.read_bytes(),
                headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert srv.api("GET", f"/tenants/{tid}").status_code == 404

    run_ok(data, "tenant", "import", str(out))
    assert srv.api("GET", f"/tenants/{tid}").status_code == 200
    still_signed_in(app, rt)
