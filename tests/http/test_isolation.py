"""Tenant isolation: a tenant's data in the shared database or in a database file of its own
({data_dir}/tenants/{id}.db), and moving a live tenant between the two with
POST /api/v2/tenants/{id}/move — tokens, sessions and checkpoints survive."""
import os
import threading

import pytest

from kshttp import CONTROL_PLANE, DEFAULT_CONNECTION, assert_error, assert_oauth_error, unique_id
from test_login import PASSWORD, App, query

MOVE_SCOPE = "update:tenants"


def db_files(server, tid):
    base = os.path.join(server.data_dir, "tenants", f"{tid}.db")
    return [p for p in (base, base + "-wal", base + "-shm") if os.path.exists(p)]


def has_own_file(server, tid):
    return os.path.exists(os.path.join(server.data_dir, "tenants", f"{tid}.db"))


def create(server, isolation=None, tid=None):
    tid = tid or unique_id("iso")
    body = {"id": tid, "friendly_name": tid}
    if isolation is not None:
        body["isolation"] = isolation
    r = server.api("POST", "/tenants", json=body)
    assert r.status_code == 201, r.text
    if isolation is not None:
        assert r.json()["isolation"] == isolation
    return tid


def move(server, tid, isolation, **kw):
    return server.api("POST", f"/tenants/{tid}/move", json={"isolation": isolation}, **kw)


def refresh(app, rt):
    import requests
    r = requests.post(app.url("/oauth/token"), data={
        "grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": rt})
    assert r.status_code == 200, r.text
    return r.json()["refresh_token"]


def silent_code(app):
    """prompt=none with the browser's login session: a code, no login page."""
    r, _, state = app.authorize(prompt="none")
    assert r.status_code == 302, r.text
    q = query(r.headers["Location"])
    assert "code" in q and q.get("state") == state, r.headers["Location"]


def signed_in(server, tid):
    """An app with a user who has signed in: (app, refresh token)."""
    app = App(server, tid)
    code, verifier = app.code()
    r = app.exchange(code, verifier)
    assert r.status_code == 200, r.text
    return app, r.json()["refresh_token"]


def test_database_tenant_has_its_own_file_and_works(server):
    tid = create(server, "database")
    assert has_own_file(server, tid)
    assert server.api("GET", f"/tenants/{tid}").json()["isolation"] == "database"
    # Management API, login, tokens.
    users = server.api("GET", "/users", tenant=tid)
    assert users.status_code == 200, users.text
    app, rt = signed_in(server, tid)
    assert server.api("GET", "/users", tenant=tid, params={"q": ""}).status_code == 200
    rt = refresh(app, rt)
    silent_code(app)
    r = server.token_request(tid, grant_type="password", client_id=app.client_id,
                             username=app.email, password=PASSWORD)
    assert r.status_code == 200, r.text
    # Nothing of it went into the shared database's view of another tenant.
    other = create(server, "shared")
    assert not has_own_file(server, other)
    emails = [u["email"] for u in server.api("GET", "/users", tenant=other).json()]
    assert app.email not in emails

    r = server.api("DELETE", f"/tenants/{tid}")
    assert r.status_code == 204, r.text
    assert db_files(server, tid) == []
    assert server.api("GET", f"/tenants/{tid}").status_code == 404
    assert server.req("GET", "/.well-known/openid-configuration", tenant=tid).status_code == 404
    assert server.api("DELETE", f"/tenants/{tid}").status_code in (204, 404)
    # The id can be taken again, and starts empty.
    create(server, "database", tid)
    assert server.api("GET", "/users", tenant=tid).json() == []


@pytest.mark.parametrize("body", [{"isolation": "bogus"}, {"isolation": 5},
                                  {"isolation": ""}, {"isolation": None}])
def test_bad_isolation_on_create_is_400(server, body):
    tid = unique_id("bad")
    r = server.api("POST", "/tenants", json={"id": tid, **body})
    assert_error(r, 400)
    assert server.api("GET", f"/tenants/{tid}").status_code == 404
    assert not has_own_file(server, tid)


@pytest.mark.parametrize("body", [{"isolation": "bogus"}, {"isolation": 1}, {},
                                  {"isolation": "database", "extra": 1}, ["database"]])
def test_bad_move_body_is_400(server, new_tenant, body):
    tid = new_tenant()
    before = server.api("GET", f"/tenants/{tid}").json()["isolation"]
    r = server.api("POST", f"/tenants/{tid}/move", json=body)
    assert_error(r, 400)
    assert server.api("GET", f"/tenants/{tid}").json()["isolation"] == before


def test_move_of_unknown_tenant_is_404(server):
    assert_error(move(server, unique_id("nobody"), "database"), 404)


def test_control_plane_cannot_move(server):
    body = assert_error(move(server, CONTROL_PLANE, "database"), 403)
    assert "registry" in body["message"]
    assert not has_own_file(server, CONTROL_PLANE)


def test_move_needs_update_tenants(server, new_tenant):
    tid = new_tenant()
    assert_error(move(server, tid, "database", token=None), 401)
    c = server.api("POST", "/clients", json={"name": unique_id("ro"), "app_type": "non_interactive"})
    assert c.status_code == 201, c.text
    cid, secret = c.json()["client_id"], c.json()["client_secret"]
    g = server.api("POST", "/client-grants", json={
        "client_id": cid, "audience": "urn:keystead:management", "scope": ["read:tenants"]})
    assert g.status_code == 201, g.text
    token = server.client_credentials(cid, secret).json()["access_token"]
    assert_error(move(server, tid, "database", token=token), 403)
    # The route lives on the control plane only.
    r = server.req("POST", f"/api/v2/tenants/{tid}/move", tenant=tid,
                   token=server.mgmt_token(), json={"isolation": "database"})
    assert r.status_code == 404, r.text


def test_move_both_ways_keeps_tokens_sessions_and_checkpoints(server):
    tid = create(server, "shared")
    app, rt = signed_in(server, tid)
    for i in range(4):
        r = server.api("POST", "/users", tenant=tid, json={
            "email": f"pager{i}-{tid}@example.com", "password": PASSWORD,
            "connection": DEFAULT_CONNECTION})
        assert r.status_code == 201, r.text
    first = server.api("GET", "/users", tenant=tid, params={"take": 2})
    assert first.status_code == 200, first.text
    page1 = first.json()
    assert len(page1["users"]) == 2 and page1.get("next"), page1
    rest = server.api("GET", "/users", tenant=tid,
                      params={"take": 50, "from": page1["next"]}).json()["users"]

    for to in ("database", "shared", "database"):
        r = move(server, tid, to)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == tid and r.json()["isolation"] == to
        assert server.api("GET", f"/tenants/{tid}").json()["isolation"] == to
        assert has_own_file(server, tid) == (to == "database")
        # The refresh token issued before the move rotates; the login session still signs in.
        rt = refresh(app, rt)
        silent_code(app)
        # A checkpoint taken before the move continues where it was.
        again = server.api("GET", "/users", tenant=tid,
                           params={"take": 50, "from": page1["next"]}).json()["users"]
        assert [u["user_id"] for u in again] == [u["user_id"] for u in rest]
    # Moving to where it is already changes nothing.
    assert move(server, tid, "database").status_code == 200
    assert has_own_file(server, tid)
    # Reuse detection still knows the rotated tokens.
    refresh(app, rt)
    import requests
    assert_oauth_error(requests.post(app.url("/oauth/token"), data={
        "grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": rt}),
        400, "invalid_grant")


def test_writes_during_a_move_are_not_lost(server):
    import requests
    tid = create(server, "shared")
    created, failures = [], []
    stop = threading.Event()
    auth = {"Authorization": f"Bearer {server.mgmt_token()}"}

    def writer(n):
        i = 0
        with requests.Session() as s:
            while not stop.is_set():
                email = f"w{n}-{i}@example.com"
                r = s.post(server.url("/api/v2/users", tid), headers=auth, timeout=60, json={
                    "email": email, "password": PASSWORD, "connection": DEFAULT_CONNECTION})
                (created if r.status_code == 201 else failures).append((email, r.status_code))
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        for to in ("database", "shared", "database", "shared"):
            seen = len(created)
            while len(created) < seen + 2 and not failures:
                stop.wait(0.01)
            r = move(server, tid, to)
            assert r.status_code == 200, r.text
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert failures == []
    assert created
    total = server.api("GET", "/users", tenant=tid,
                       params={"include_totals": "true", "per_page": 1}).json()["total"]
    assert total == len(created)
