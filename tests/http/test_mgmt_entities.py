"""Management API v2 entities inside a child tenant (path-routed: /t/{tenant}/api/v2/...)."""
import json
import re

import pytest

from kshttp import DEFAULT_CONNECTION, assert_error, assert_oauth_error, quote, unique_id

PASSWORD = "Correct-Horse-9-battery"
USER_ID_RE = re.compile(r"^auth0\|[0-9a-f]{24}$")


def create_user(server, tenant, email=None, **extra):
    email = email or f"{unique_id('u')}@example.com"
    body = {"email": email, "password": PASSWORD, "connection": DEFAULT_CONNECTION, **extra}
    r = server.api("POST", "/users", tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def no_secret_fields(obj, path="$"):
    """Asserts no password or hash shows anywhere in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert k.lower() not in ("password", "password_hash", "hash", "passwordhash"), \
                f"{path}.{k} exposed"
            no_secret_fields(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            no_secret_fields(v, f"{path}[{i}]")


def assert_no_password(resp):
    assert PASSWORD not in resp.text
    assert "$argon2" not in resp.text
    no_secret_fields(resp.json())


# --- users -------------------------------------------------------------------------------------

def test_user_crud(server, acme):
    email = f"{unique_id('ann')}@example.com"
    r = server.api("POST", "/users", tenant=acme, json={
        "email": email, "password": PASSWORD, "connection": DEFAULT_CONNECTION,
        "name": "Ann Example", "user_metadata": {"theme": "dark"}})
    assert r.status_code == 201, r.text
    assert_no_password(r)
    user = r.json()
    assert USER_ID_RE.match(user["user_id"]), user["user_id"]
    assert user["email"] == email
    assert user["name"] == "Ann Example"
    assert user["user_metadata"] == {"theme": "dark"}
    assert user.get("email_verified") is False
    assert "created_at" in user
    uid = user["user_id"]

    r = server.api("GET", f"/users/{quote(uid)}", tenant=acme)
    assert r.status_code == 200, r.text
    assert_no_password(r)
    assert r.json()["user_id"] == uid and r.json()["email"] == email

    r = server.api("PATCH", f"/users/{quote(uid)}", tenant=acme,
                   json={"name": "Ann Renamed", "app_metadata": {"plan": "pro"}})
    assert r.status_code == 200, r.text
    assert_no_password(r)
    assert r.json()["name"] == "Ann Renamed"
    assert r.json()["app_metadata"] == {"plan": "pro"}
    assert r.json()["user_metadata"] == {"theme": "dark"}
    assert server.api("GET", f"/users/{quote(uid)}", tenant=acme).json()["name"] == "Ann Renamed"

    r = server.api("PATCH", f"/users/{quote(uid)}", tenant=acme,
                   json={"password": "Another-Good-Pass-42"})
    assert r.status_code == 200, r.text
    assert "Another-Good-Pass-42" not in r.text
    no_secret_fields(r.json())

    r = server.api("DELETE", f"/users/{quote(uid)}", tenant=acme)
    assert r.status_code == 204, r.text
    assert_error(server.api("GET", f"/users/{quote(uid)}", tenant=acme), 404)
    assert_error(server.api("PATCH", f"/users/{quote(uid)}", tenant=acme, json={"name": "x"}), 404)


def test_user_pipe_in_id_works_unencoded(server, acme):
    uid = create_user(server, acme)["user_id"]
    r = server.req("GET", f"/api/v2/users/{uid}", tenant=acme, token=server.mgmt_token())
    assert r.status_code == 200, r.text


def test_duplicate_user_email_is_409(server, acme):
    email = f"{unique_id('dup')}@example.com"
    create_user(server, acme, email)
    r = server.api("POST", "/users", tenant=acme, json={
        "email": email, "password": PASSWORD, "connection": DEFAULT_CONNECTION})
    assert_error(r, 409)


def test_user_on_unknown_connection_is_400_or_404(server, acme):
    r = server.api("POST", "/users", tenant=acme, json={
        "email": f"{unique_id('c')}@example.com", "password": PASSWORD,
        "connection": "No-Such-Connection"})
    assert r.status_code in (400, 404), r.text
    assert_error(r, r.status_code)


def test_user_list_pagination(server, new_tenant):
    t = new_tenant()
    ids = [create_user(server, t)["user_id"] for _ in range(3)]

    r = server.api("GET", "/users", tenant=t,
                   params={"page": 0, "per_page": 2, "include_totals": "true"})
    assert r.status_code == 200, r.text
    assert_no_password(r)
    body = r.json()
    assert body["start"] == 0
    assert body["limit"] == 2
    assert body["length"] == 2
    assert body["total"] == 3
    assert len(body["users"]) == 2

    r = server.api("GET", "/users", tenant=t,
                   params={"page": 1, "per_page": 2, "include_totals": "true"})
    body2 = r.json()
    assert body2["start"] == 2 and body2["length"] == 1 and body2["total"] == 3
    seen = [u["user_id"] for u in body["users"] + body2["users"]]
    assert sorted(seen) == sorted(ids)

    r = server.api("GET", "/users", tenant=t, params={"page": 0, "per_page": 2})
    assert r.status_code == 200
    assert isinstance(r.json(), list) and len(r.json()) == 2
    r = server.api("GET", "/users", tenant=t)
    assert isinstance(r.json(), list) and sorted(u["user_id"] for u in r.json()) == sorted(ids)


def test_users_are_per_tenant(server, acme, new_tenant):
    other = new_tenant()
    uid = create_user(server, acme)["user_id"]
    assert_error(server.api("GET", f"/users/{quote(uid)}", tenant=other), 404)
    assert server.api("GET", "/users", tenant=other).json() == []


# --- clients -----------------------------------------------------------------------------------

def test_client_create_get_rotate(server, acme):
    r = server.api("POST", "/clients", tenant=acme,
                   json={"name": "Backend", "app_type": "non_interactive"})
    assert r.status_code == 201, r.text
    client = r.json()
    cid, secret = client["client_id"], client["client_secret"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", cid), cid
    assert len(secret) == 64, secret
    assert client["name"] == "Backend" and client["app_type"] == "non_interactive"

    r = server.api("GET", f"/clients/{cid}", tenant=acme)
    assert r.status_code == 200, r.text
    assert "client_secret" not in r.json()
    assert secret not in r.text
    r = server.api("GET", "/clients", tenant=acme)
    assert r.status_code == 200
    assert secret not in r.text
    assert all("client_secret" not in c for c in r.json())
    assert cid in [c["client_id"] for c in r.json()]

    r = server.api("PATCH", f"/clients/{cid}", tenant=acme, json={"name": "Backend 2"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Backend 2"
    assert "client_secret" not in r.json()

    # A grant so the client can get tokens.
    audience = f"https://{unique_id('rot')}.acme.test"
    rs = server.api("POST", "/resource-servers", tenant=acme, json={
        "name": audience, "identifier": audience, "scopes": [{"value": "read:x"}]})
    assert rs.status_code == 201, rs.text
    g = server.api("POST", "/client-grants", tenant=acme,
                   json={"client_id": cid, "audience": audience, "scope": ["read:x"]})
    assert g.status_code == 201, g.text
    assert server.client_credentials(cid, secret, audience, tenant=acme).status_code == 200

    r = server.api("POST", f"/clients/{cid}/rotate-secret", tenant=acme)
    assert r.status_code == 200, r.text
    new_secret = r.json()["client_secret"]
    assert len(new_secret) == 64 and new_secret != secret
    assert r.json()["client_id"] == cid

    assert_oauth_error(server.client_credentials(cid, secret, audience, tenant=acme),
                       401, "invalid_client")
    r = server.client_credentials(cid, new_secret, audience, tenant=acme)
    assert r.status_code == 200, r.text

    assert server.api("DELETE", f"/clients/{cid}", tenant=acme).status_code == 204
    assert_error(server.api("GET", f"/clients/{cid}", tenant=acme), 404)
    assert_oauth_error(server.client_credentials(cid, new_secret, audience, tenant=acme),
                       401, "invalid_client")


def test_client_secrets_are_unique(server, acme):
    a = server.api("POST", "/clients", tenant=acme, json={"name": "a", "app_type": "spa"}).json()
    b = server.api("POST", "/clients", tenant=acme, json={"name": "b", "app_type": "spa"}).json()
    assert a["client_id"] != b["client_id"]
    assert a.get("client_secret") != b.get("client_secret")


# --- connections -------------------------------------------------------------------------------

def test_connection_secret_is_write_only(server, acme):
    name = unique_id("oidc")
    r = server.api("POST", "/connections", tenant=acme, json={
        "name": name, "strategy": "oidc",
        "options": {"client_id": "idp-client", "client_secret": "s3cr3t-value",
                    "discovery_url": "https://idp.example.com/.well-known/openid-configuration",
                    "scope": "openid profile email", "type": "back_channel"}})
    assert r.status_code == 201, r.text
    conn = r.json()
    assert "s3cr3t-value" not in r.text
    assert conn["id"].startswith("con_"), conn["id"]
    assert conn["name"] == name and conn["strategy"] == "oidc"
    assert "client_secret" not in conn["options"]
    assert isinstance(conn["options"].get("client_secret_hint"), str)
    assert conn["options"]["client_secret_hint"] != "s3cr3t-value"
    assert conn["options"]["client_id"] == "idp-client"

    r = server.api("GET", f"/connections/{conn['id']}", tenant=acme)
    assert r.status_code == 200, r.text
    assert "s3cr3t-value" not in r.text
    assert "client_secret_hint" in r.json()["options"]
    r = server.api("GET", "/connections", tenant=acme)
    assert r.status_code == 200 and "s3cr3t-value" not in r.text
    assert name in [c["name"] for c in r.json()]

    r = server.api("PATCH", f"/connections/{conn['id']}", tenant=acme, json={
        "options": {"client_id": "idp-client-2", "client_secret": "an0ther-s3cr3t"}})
    assert r.status_code == 200, r.text
    assert "an0ther-s3cr3t" not in r.text
    assert r.json()["options"]["client_id"] == "idp-client-2"

    assert server.api("DELETE", f"/connections/{conn['id']}", tenant=acme).status_code == 204
    assert_error(server.api("GET", f"/connections/{conn['id']}", tenant=acme), 404)


# --- resource servers and client grants --------------------------------------------------------

def test_resource_server_and_client_grant(server, new_tenant):
    t = new_tenant()
    r = server.api("POST", "/resource-servers", tenant=t, json={
        "name": "Acme API", "identifier": "https://api.acme.test",
        "scopes": [{"value": "read:things", "description": "Read things"}]})
    assert r.status_code == 201, r.text
    rs = r.json()
    assert rs["id"].startswith("api_"), rs["id"]
    assert rs["identifier"] == "https://api.acme.test"
    assert [s["value"] for s in rs["scopes"]] == ["read:things"]

    r = server.api("GET", f"/resource-servers/{rs['id']}", tenant=t)
    assert r.status_code == 200 and r.json()["identifier"] == "https://api.acme.test"
    r = server.api("PATCH", f"/resource-servers/{rs['id']}", tenant=t, json={
        "scopes": [{"value": "read:things"}, {"value": "write:things"}]})
    assert r.status_code == 200, r.text
    assert sorted(s["value"] for s in r.json()["scopes"]) == ["read:things", "write:things"]

    dup = server.api("POST", "/resource-servers", tenant=t, json={
        "name": "Again", "identifier": "https://api.acme.test"})
    assert_error(dup, 409)

    client = server.api("POST", "/clients", tenant=t,
                        json={"name": "m2m", "app_type": "non_interactive"}).json()
    r = server.api("POST", "/client-grants", tenant=t, json={
        "client_id": client["client_id"], "audience": "https://api.acme.test",
        "scope": ["read:things"]})
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["id"].startswith("cgr_"), grant["id"]
    assert grant["client_id"] == client["client_id"]
    assert grant["audience"] == "https://api.acme.test"
    assert grant["scope"] == ["read:things"]

    r = server.api("GET", "/client-grants", tenant=t)
    assert r.status_code == 200
    assert grant["id"] in [g["id"] for g in r.json()]

    dup = server.api("POST", "/client-grants", tenant=t, json={
        "client_id": client["client_id"], "audience": "https://api.acme.test", "scope": []})
    assert_error(dup, 409)

    r = server.api("PATCH", f"/client-grants/{grant['id']}", tenant=t,
                   json={"scope": ["read:things", "write:things"]})
    assert r.status_code == 200, r.text
    tok = server.client_credentials(client["client_id"], client["client_secret"],
                                    "https://api.acme.test", tenant=t)
    assert tok.status_code == 200, tok.text
    assert sorted(tok.json().get("scope", "").split()) == ["read:things", "write:things"]

    assert server.api("DELETE", f"/client-grants/{grant['id']}", tenant=t).status_code == 204
    assert_oauth_error(server.client_credentials(client["client_id"], client["client_secret"],
                                                 "https://api.acme.test", tenant=t),
                       403, "access_denied")

    assert server.api("DELETE", f"/resource-servers/{rs['id']}", tenant=t).status_code == 204
    assert_error(server.api("GET", f"/resource-servers/{rs['id']}", tenant=t), 404)


def test_client_grant_for_unknown_client_or_audience(server, acme):
    r = server.api("POST", "/client-grants", tenant=acme, json={
        "client_id": "x" * 32, "audience": "https://nope.test", "scope": []})
    assert r.status_code in (400, 404), r.text
    assert_error(r, r.status_code)


# --- roles and permissions ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def rbac(server, new_tenant):
    """A tenant with an API (two scopes), a role and a user."""
    t = new_tenant()
    r = server.api("POST", "/resource-servers", tenant=t, json={
        "name": "Acme API", "identifier": "https://api.acme.test",
        "scopes": [{"value": "read:things"}, {"value": "write:things"}]})
    assert r.status_code == 201, r.text
    return {"tenant": t, "api": "https://api.acme.test"}


def test_role_permissions_and_users(server, rbac):
    t, api = rbac["tenant"], rbac["api"]
    r = server.api("POST", "/roles", tenant=t, json={"name": "editor", "description": "Edits"})
    assert r.status_code == 201, r.text
    role = r.json()
    assert role["id"].startswith("rol_"), role["id"]
    assert role["name"] == "editor" and role["description"] == "Edits"
    rid = role["id"]

    assert server.api("GET", f"/roles/{rid}", tenant=t).json()["name"] == "editor"
    r = server.api("PATCH", f"/roles/{rid}", tenant=t, json={"description": "Edits things"})
    assert r.status_code == 200 and r.json()["description"] == "Edits things", r.text
    assert rid in [x["id"] for x in server.api("GET", "/roles", tenant=t).json()]

    r = server.api("POST", f"/roles/{rid}/permissions", tenant=t, json={"permissions": [
        {"resource_server_identifier": api, "permission_name": "read:things"},
        {"resource_server_identifier": api, "permission_name": "write:things"}]})
    assert r.status_code == 204, r.text
    r = server.api("GET", f"/roles/{rid}/permissions", tenant=t)
    assert r.status_code == 200, r.text
    perms = {(p["resource_server_identifier"], p["permission_name"]) for p in r.json()}
    assert perms == {(api, "read:things"), (api, "write:things")}

    r = server.api("DELETE", f"/roles/{rid}/permissions", tenant=t, json={"permissions": [
        {"resource_server_identifier": api, "permission_name": "write:things"}]})
    assert r.status_code == 204, r.text
    r = server.api("GET", f"/roles/{rid}/permissions", tenant=t)
    assert [p["permission_name"] for p in r.json()] == ["read:things"]

    uid = create_user(server, t)["user_id"]
    r = server.api("POST", f"/roles/{rid}/users", tenant=t, json={"users": [uid]})
    assert r.status_code == 204, r.text
    r = server.api("GET", f"/roles/{rid}/users", tenant=t)
    assert r.status_code == 200, r.text
    assert [u["user_id"] for u in r.json()] == [uid]
    r = server.api("GET", f"/users/{quote(uid)}/roles", tenant=t)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [rid]
    assert r.json()[0]["name"] == "editor"

    r = server.api("DELETE", f"/users/{quote(uid)}/roles", tenant=t, json={"roles": [rid]})
    assert r.status_code == 204, r.text
    assert server.api("GET", f"/users/{quote(uid)}/roles", tenant=t).json() == []
    r = server.api("POST", f"/users/{quote(uid)}/roles", tenant=t, json={"roles": [rid]})
    assert r.status_code == 204, r.text
    assert [x["id"] for x in server.api("GET", f"/users/{quote(uid)}/roles", tenant=t).json()] \
        == [rid]

    assert server.api("DELETE", f"/roles/{rid}", tenant=t).status_code == 204
    assert_error(server.api("GET", f"/roles/{rid}", tenant=t), 404)
    assert server.api("GET", f"/users/{quote(uid)}/roles", tenant=t).json() == []


def test_role_permission_must_exist_on_the_api(server, rbac):
    t, api = rbac["tenant"], rbac["api"]
    rid = server.api("POST", "/roles", tenant=t, json={"name": unique_id("r")}).json()["id"]
    r = server.api("POST", f"/roles/{rid}/permissions", tenant=t, json={"permissions": [
        {"resource_server_identifier": api, "permission_name": "fly:things"}]})
    assert r.status_code in (400, 404), r.text
    assert_error(r, r.status_code)
    assert server.api("GET", f"/roles/{rid}/permissions", tenant=t).json() == []


def test_user_permissions(server, rbac):
    t, api = rbac["tenant"], rbac["api"]
    uid = create_user(server, t)["user_id"]
    r = server.api("POST", f"/users/{quote(uid)}/permissions", tenant=t, json={"permissions": [
        {"resource_server_identifier": api, "permission_name": "write:things"}]})
    assert r.status_code in (201, 204), r.text
    r = server.api("GET", f"/users/{quote(uid)}/permissions", tenant=t)
    assert r.status_code == 200, r.text
    perms = {(p["resource_server_identifier"], p["permission_name"]) for p in r.json()}
    assert (api, "write:things") in perms

    r = server.api("DELETE", f"/users/{quote(uid)}/permissions", tenant=t, json={"permissions": [
        {"resource_server_identifier": api, "permission_name": "write:things"}]})
    assert r.status_code == 204, r.text
    perms = {(p["resource_server_identifier"], p["permission_name"])
             for p in server.api("GET", f"/users/{quote(uid)}/permissions", tenant=t).json()}
    assert (api, "write:things") not in perms


def test_duplicate_role_name_is_409(server, rbac):
    t = rbac["tenant"]
    name = unique_id("role")
    assert server.api("POST", "/roles", tenant=t, json={"name": name}).status_code == 201
    assert_error(server.api("POST", "/roles", tenant=t, json={"name": name}), 409)


# --- organizations -----------------------------------------------------------------------------

def test_organization_members_and_roles(server, new_tenant):
    t = new_tenant()
    r = server.api("POST", "/organizations", tenant=t,
                   json={"name": "acme-org", "display_name": "Acme Org"})
    assert r.status_code == 201, r.text
    org = r.json()
    assert org["id"].startswith("org_"), org["id"]
    assert org["name"] == "acme-org" and org["display_name"] == "Acme Org"
    oid = org["id"]

    assert server.api("GET", f"/organizations/{oid}", tenant=t).json()["name"] == "acme-org"
    assert_error(server.api("POST", "/organizations", tenant=t,
                            json={"name": "acme-org", "display_name": "Again"}), 409)
    r = server.api("PATCH", f"/organizations/{oid}", tenant=t, json={"display_name": "Acme II"})
    assert r.status_code == 200 and r.json()["display_name"] == "Acme II", r.text

    u1 = create_user(server, t)["user_id"]
    u2 = create_user(server, t)["user_id"]
    r = server.api("POST", f"/organizations/{oid}/members", tenant=t, json={"members": [u1, u2]})
    assert r.status_code == 204, r.text
    r = server.api("GET", f"/organizations/{oid}/members", tenant=t)
    assert r.status_code == 200, r.text
    assert sorted(m["user_id"] for m in r.json()) == sorted([u1, u2])

    rid = server.api("POST", "/roles", tenant=t, json={"name": "org-admin"}).json()["id"]
    r = server.api("POST", f"/organizations/{oid}/members/{quote(u1)}/roles", tenant=t,
                   json={"roles": [rid]})
    assert r.status_code == 204, r.text
    r = server.api("GET", f"/organizations/{oid}/members/{quote(u1)}/roles", tenant=t)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == [rid]
    assert server.api("GET", f"/organizations/{oid}/members/{quote(u2)}/roles",
                      tenant=t).json() == []

    r = server.api("DELETE", f"/organizations/{oid}/members", tenant=t, json={"members": [u2]})
    assert r.status_code == 204, r.text
    members = server.api("GET", f"/organizations/{oid}/members", tenant=t).json()
    assert [m["user_id"] for m in members] == [u1]

    # A member must be a user of the tenant.
    r = server.api("POST", f"/organizations/{oid}/members", tenant=t,
                   json={"members": ["auth0|" + "0" * 24]})
    assert r.status_code in (400, 404), r.text

    assert server.api("DELETE", f"/organizations/{oid}", tenant=t).status_code == 204
    assert_error(server.api("GET", f"/organizations/{oid}", tenant=t), 404)


def test_organization_by_name_and_user_organizations(server, new_tenant):
    t = new_tenant()
    oid = server.api("POST", "/organizations", tenant=t,
                     json={"name": "by-name", "display_name": "By Name"}).json()["id"]
    r = server.api("GET", "/organizations/name/by-name", tenant=t)
    assert r.status_code == 200 and r.json()["id"] == oid, r.text
    assert_error(server.api("GET", "/organizations/name/no-such-org", tenant=t), 404)
    uid = create_user(server, t)["user_id"]
    assert server.api("POST", f"/organizations/{oid}/members", tenant=t,
                      json={"members": [uid]}).status_code == 204
    r = server.api("GET", f"/users/{quote(uid)}/organizations", tenant=t)
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()] == [oid]


def test_organization_checkpoint_pagination(server, new_tenant):
    t = new_tenant()
    ids = []
    for i in range(5):
        r = server.api("POST", "/organizations", tenant=t, json={"name": f"org-{i}"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    r = server.api("GET", "/organizations", tenant=t, params={"take": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["organizations"]) == 2
    assert isinstance(body.get("next"), str) and body["next"], body
    seen = [o["id"] for o in body["organizations"]]
    for _ in range(5):
        if not body.get("next"):
            break
        r = server.api("GET", "/organizations", tenant=t,
                       params={"from": body["next"], "take": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["organizations"]) <= 2
        seen += [o["id"] for o in body["organizations"]]
    assert not body.get("next"), "checkpoint pagination did not end"
    assert seen == ids, "checkpoint pagination must return every item once, in order"


def test_organization_member_checkpoint_pagination(server, new_tenant):
    t = new_tenant()
    oid = server.api("POST", "/organizations", tenant=t, json={"name": "big"}).json()["id"]
    users = [create_user(server, t)["user_id"] for _ in range(3)]
    assert server.api("POST", f"/organizations/{oid}/members", tenant=t,
                      json={"members": users}).status_code == 204
    r = server.api("GET", f"/organizations/{oid}/members", tenant=t, params={"take": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["members"]) == 2 and body.get("next"), body
    r = server.api("GET", f"/organizations/{oid}/members", tenant=t,
                   params={"from": body["next"], "take": 2})
    rest = r.json()["members"]
    assert sorted(m["user_id"] for m in body["members"] + rest) == sorted(users)


def test_organization_list_with_totals(server, new_tenant):
    t = new_tenant()
    for i in range(3):
        assert server.api("POST", "/organizations", tenant=t,
                          json={"name": f"o{i}"}).status_code == 201
    r = server.api("GET", "/organizations", tenant=t,
                   params={"page": 0, "per_page": 2, "include_totals": "true"})
    body = r.json()
    assert body["total"] == 3 and len(body["organizations"]) == 2 and body["start"] == 0


def test_responses_are_json_utf8(server, acme):
    u = create_user(server, acme, name="Zoë Ærøskøbing ✓")
    assert u["name"] == "Zoë Ærøskøbing ✓"
    r = server.api("GET", f"/users/{quote(u['user_id'])}", tenant=acme)
    assert r.headers["Content-Type"].startswith("application/json")
    assert json.loads(r.content.decode("utf-8"))["name"] == "Zoë Ærøskøbing ✓"
