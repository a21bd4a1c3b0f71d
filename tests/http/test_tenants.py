"""The Tenants API on the control plane (/api/v2/tenants) and tenant provisioning."""
import pytest

from kshttp import CONTROL_PLANE, DEFAULT_CONNECTION, MGMT_AUDIENCE, assert_error, unique_id


def control_plane_org(server, name):
    """The control-plane organization named `name`, or None."""
    page = 0
    while True:
        r = server.api("GET", "/organizations",
                       params={"page": page, "per_page": 100, "include_totals": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
        for org in body["organizations"]:
            if org["name"] == name:
                return org
        if (page + 1) * 100 >= body["total"]:
            return None
        page += 1


def tenant_ids(server):
    """Every tenant's id, page by page (the session server holds many)."""
    ids, page = set(), 0
    while True:
        r = server.api("GET", "/tenants", params={"per_page": 100, "page": page})
        assert r.status_code == 200, r.text
        assert isinstance(r.json(), list), r.json()
        ids |= {t["id"] for t in r.json()}
        if len(r.json()) < 100:
            return ids
        page += 1


def test_tenant_lifecycle(server):
    tid = unique_id("acme")
    r = server.api("POST", "/tenants", json={"id": tid, "friendly_name": "Acme Inc"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == tid
    assert body["friendly_name"] == "Acme Inc"
    assert body.get("status", "active") == "active"

    assert tid in tenant_ids(server)
    r = server.api("GET", f"/tenants/{tid}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == tid and r.json()["friendly_name"] == "Acme Inc"

    r = server.api("PATCH", f"/tenants/{tid}", json={"friendly_name": "Acme Corporation"})
    assert r.status_code == 200, r.text
    assert r.json()["friendly_name"] == "Acme Corporation"
    assert server.api("GET", f"/tenants/{tid}").json()["friendly_name"] == "Acme Corporation"

    # The tenant serves OpenID discovery under its own issuer.
    r = server.req("GET", "/.well-known/openid-configuration", tenant=tid)
    assert r.status_code == 200, r.text

    r = server.api("DELETE", f"/tenants/{tid}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(server.api("GET", f"/tenants/{tid}"), 404)
    assert tid not in tenant_ids(server)
    assert_error(server.req("GET", "/.well-known/openid-configuration", tenant=tid), 404)


def test_tenant_list_pagination(server, new_tenant):
    for _ in range(3):
        new_tenant()
    r = server.api("GET", "/tenants", params={"page": 0, "per_page": 2, "include_totals": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["start"] == 0 and body["limit"] == 2
    assert body["length"] == len(body["tenants"]) == 2
    assert body["total"] >= 3
    r = server.api("GET", "/tenants", params={"page": 0, "per_page": 2})
    assert isinstance(r.json(), list) and len(r.json()) == 2


@pytest.mark.parametrize("bad", ["Bad_ID!", "UPPER", "-leading-dash", "has space", "a" * 64, ""])
def test_invalid_tenant_id_is_400(server, bad):
    before = tenant_ids(server)
    r = server.api("POST", "/tenants", json={"id": bad, "friendly_name": "Bad"})
    assert_error(r, 400)
    assert tenant_ids(server) == before


@pytest.mark.parametrize("reserved", ["www", "api", "admin", "static", "settings", "import"])
def test_reserved_tenant_id_is_400(server, reserved):
    r = server.api("POST", "/tenants", json={"id": reserved, "friendly_name": "Reserved"})
    assert_error(r, 400)
    assert reserved not in tenant_ids(server)


def test_control_plane_id_cannot_be_created_again(server):
    r = server.api("POST", "/tenants", json={"id": CONTROL_PLANE, "friendly_name": "again"})
    assert r.status_code in (400, 409), r.text
    assert_error(r, r.status_code)


def test_duplicate_tenant_is_409(server, new_tenant):
    tid = new_tenant("First")
    r = server.api("POST", "/tenants", json={"id": tid, "friendly_name": "Second"})
    assert_error(r, 409)
    assert server.api("GET", f"/tenants/{tid}").json()["friendly_name"] == "First"


def test_deleting_the_control_plane_is_403(server):
    r = server.api("DELETE", f"/tenants/{CONTROL_PLANE}")
    assert_error(r, 403)
    assert server.req("GET", "/.well-known/openid-configuration").status_code == 200
    assert server.api("GET", "/tenants").status_code == 200


def test_tenant_creation_creates_control_plane_organization(server):
    tid = unique_id("org")
    r = server.api("POST", "/tenants", json={"id": tid, "friendly_name": "Org Linked"})
    assert r.status_code == 201, r.text
    org = control_plane_org(server, tid)
    assert org is not None, f"no control-plane organization named {tid}"
    assert org["id"].startswith("org_"), org
    assert org["display_name"] == "Org Linked"
    assert org["metadata"]["tenant_id"] == tid
    r = server.api("GET", f"/organizations/{org['id']}")
    assert r.status_code == 200 and r.json()["name"] == tid

    # Deleting the tenant removes its organization.
    assert server.api("DELETE", f"/tenants/{tid}").status_code == 204
    assert control_plane_org(server, tid) is None
    assert_error(server.api("GET", f"/organizations/{org['id']}"), 404)


def test_new_tenant_is_provisioned(server, new_tenant):
    """Provisioning gives a tenant its own management API and the default database connection,
    and no users; the control plane's clients do not show."""
    tid = new_tenant()
    r = server.api("GET", "/resource-servers", tenant=tid)
    assert r.status_code == 200, r.text
    assert MGMT_AUDIENCE in [rs["identifier"] for rs in r.json()]
    r = server.api("GET", "/connections", tenant=tid)
    assert r.status_code == 200, r.text
    conns = {c["name"]: c for c in r.json()}
    assert DEFAULT_CONNECTION in conns and conns[DEFAULT_CONNECTION]["strategy"] == "auth0"
    r = server.api("GET", "/clients", tenant=tid)
    assert r.status_code == 200, r.text
    assert all(c["client_id"] != "pytest-bootstrap-client" for c in r.json())
    r = server.api("GET", "/users", tenant=tid, params={"include_totals": "true"})
    assert r.status_code == 200 and r.json()["total"] == 0, r.text


def test_new_tenant_gets_default_app_and_m2m_client(server, new_tenant):
    """DESIGN.md Lifecycle: provisioning creates "a 'Default App' and an M2M client"."""
    tid = new_tenant()
    r = server.api("GET", "/clients", tenant=tid)
    assert r.status_code == 200, r.text
    clients = r.json()
    assert "Default App" in [c["name"] for c in clients], clients
    assert any(c.get("app_type") == "non_interactive" for c in clients), clients
    assert all("client_secret" not in c for c in clients)


def test_tenant_delete_is_idempotent_or_404(server, new_tenant):
    tid = new_tenant()
    assert server.api("DELETE", f"/tenants/{tid}").status_code == 204
    r = server.api("DELETE", f"/tenants/{tid}")
    assert r.status_code in (204, 404), r.text


def test_recreated_tenant_starts_empty(server):
    tid = unique_id("re")
    assert server.api("POST", "/tenants", json={"id": tid, "friendly_name": "x"}).status_code == 201
    r = server.api("POST", "/users", tenant=tid, json={
        "email": "gone@example.com", "password": "Correct-Horse-9-battery",
        "connection": DEFAULT_CONNECTION})
    assert r.status_code == 201, r.text
    assert server.api("DELETE", f"/tenants/{tid}").status_code == 204
    assert server.api("POST", "/tenants", json={"id": tid, "friendly_name": "x"}).status_code == 201
    r = server.api("GET", "/users", tenant=tid, params={"include_totals": "true"})
    assert r.status_code == 200 and r.json()["total"] == 0, r.text
