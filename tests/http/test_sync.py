"""Entity sync (DESIGN.md "Entity sync"): resource servers, roles and role permissions written on
the control plane reach every child tenant, keep their ids, carry is_system and cannot be changed
on the child. Everything a test creates on the control plane is deleted again at its end, so the
copies do not leak into the other tests' tenants."""
import pytest

from jwtutil import decode
from kshttp import DEFAULT_CONNECTION, assert_error, quote, unique_id

RS_MESSAGE = ("This resource server is a system resource and cannot be modified. "
              "Make changes in the control plane instead.")
ROLE_MESSAGE = ("This role is a system resource and cannot be modified. "
                "Make changes in the control plane instead.")
PASSWORD = "Correct-Horse-9-battery"


def perms(identifier, *names):
    return {"permissions": [{"resource_server_identifier": identifier, "permission_name": n}
                            for n in names]}


def ok(r, status):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    return r.json() if r.content else None


class ControlPlane:
    """Creates resource servers and roles on the control plane; deletes them at teardown."""

    def __init__(self, server):
        self.server = server
        self.rs_ids = []
        self.role_ids = []

    def rs(self, identifier=None, **extra):
        identifier = identifier or f"https://{unique_id('api')}.sync.test"
        body = {"identifier": identifier, "name": f"API {identifier}",
                "scopes": [{"value": "read:things", "description": "Read things"},
                           {"value": "write:things", "description": "Write things"}]}
        body.update(extra)
        rs = ok(self.server.api("POST", "/resource-servers", json=body), 201)
        self.rs_ids.append(rs["id"])
        return rs

    def role(self, name=None, **extra):
        body = {"name": name or unique_id("role"), "description": "synced role"}
        body.update(extra)
        role = ok(self.server.api("POST", "/roles", json=body), 201)
        self.role_ids.append(role["id"])
        return role

    def cleanup(self):
        for rid in self.role_ids:
            assert self.server.api("DELETE", f"/roles/{rid}").status_code in (204, 404)
        for rs_id in self.rs_ids:
            assert self.server.api("DELETE", f"/resource-servers/{rs_id}").status_code in (204, 404)


@pytest.fixture
def cp(server):
    plane = ControlPlane(server)
    yield plane
    plane.cleanup()


@pytest.fixture
def sync_switches(server):
    """Sets the control plane's sync switches; turns both back on at the end."""
    def set_switches(**switches):
        ok(server.api("PATCH", "/tenants/settings", json={"sync": switches}), 200)
    yield set_switches
    set_switches(resource_servers=True, roles=True)


def child_rs(server, tenant, rs_id):
    r = server.api("GET", f"/resource-servers/{rs_id}", tenant=tenant)
    return r.json() if r.status_code == 200 else None


def child_role(server, tenant, rid):
    r = server.api("GET", f"/roles/{rid}", tenant=tenant)
    return r.json() if r.status_code == 200 else None


def role_perms(server, tenant, rid):
    r = server.api("GET", f"/roles/{rid}/permissions", tenant=tenant)
    assert r.status_code == 200, r.text
    return {(p["resource_server_identifier"], p["permission_name"]) for p in r.json()}


def create_user(server, tenant):
    return ok(server.api("POST", "/users", tenant=tenant, json={
        "email": f"{unique_id('u')}@example.com", "password": PASSWORD,
        "connection": DEFAULT_CONNECTION}), 201)["user_id"]


# --- events ------------------------------------------------------------------------------------

def test_resource_server_create_update_delete_reach_children(server, new_tenant, cp):
    a, b = new_tenant(), new_tenant()
    ok(server.api("POST", f"/tenants/{b}/suspend"), 200)
    rs = cp.rs(token_lifetime=900)
    assert rs["is_system"] is False
    ok(server.api("POST", f"/tenants/{b}/resume"), 200)  # a suspended child got it too
    for t in (a, b):
        copy = child_rs(server, t, rs["id"])
        assert copy is not None, t
        assert copy["is_system"] is True
        assert copy["identifier"] == rs["identifier"] and copy["scopes"] == rs["scopes"]
        assert copy["token_lifetime"] == 900
        assert "_synced" not in copy
        by_identifier = server.api("GET", f"/resource-servers/{quote(rs['identifier'])}", tenant=t)
        assert by_identifier.status_code == 200 and by_identifier.json()["id"] == rs["id"]

    ok(server.api("PATCH", f"/resource-servers/{rs['id']}",
                  json={"name": "Renamed", "scopes": [{"value": "admin:things"}]}), 200)
    for t in (a, b):
        copy = child_rs(server, t, rs["id"])
        assert copy["name"] == "Renamed"
        assert [s["value"] for s in copy["scopes"]] == ["admin:things"]
        assert copy["is_system"] is True
    assert server.api("GET", f"/resource-servers/{rs['id']}").json()["is_system"] is False

    ok(server.api("DELETE", f"/resource-servers/{rs['id']}"), 204)
    for t in (a, b):
        assert_error(server.api("GET", f"/resource-servers/{rs['id']}", tenant=t), 404)


def test_role_and_permission_changes_reach_children(server, new_tenant, cp):
    a, b = new_tenant(), new_tenant()
    ok(server.api("POST", f"/tenants/{b}/suspend"), 200)
    api = cp.rs()["identifier"]
    role = cp.role(metadata={"team": "core"})
    rid = role["id"]
    assert role["is_system"] is False and role["metadata"] == {"team": "core"}
    ok(server.api("POST", f"/roles/{rid}/permissions",
                  json=perms(api, "read:things", "write:things")), 204)
    ok(server.api("DELETE", f"/roles/{rid}/permissions", json=perms(api, "write:things")), 204)
    new_name = unique_id("renamed")
    ok(server.api("PATCH", f"/roles/{rid}", json={"name": new_name, "description": "Renamed"}),
       200)
    ok(server.api("POST", f"/tenants/{b}/resume"), 200)
    for t in (a, b):
        copy = child_role(server, t, rid)
        assert copy is not None, t
        assert copy["is_system"] is True
        assert copy["name"] == new_name and copy["description"] == "Renamed"
        assert copy["metadata"] == {"team": "core"}
        assert role_perms(server, t, rid) == {(api, "read:things")}

    ok(server.api("DELETE", f"/roles/{rid}"), 204)
    for t in (a, b):
        assert_error(server.api("GET", f"/roles/{rid}", tenant=t), 404)


def test_assigning_a_synced_role_is_allowed_and_delete_removes_the_assignments(server, new_tenant,
                                                                               cp):
    t = new_tenant()
    rid = cp.role()["id"]
    uid = create_user(server, t)
    ok(server.api("POST", f"/users/{quote(uid)}/roles", tenant=t, json={"roles": [rid]}), 204)
    other = create_user(server, t)
    ok(server.api("POST", f"/roles/{rid}/users", tenant=t, json={"users": [other]}), 204)
    org = ok(server.api("POST", "/organizations", tenant=t, json={"name": unique_id("org")}), 201)
    ok(server.api("POST", f"/organizations/{org['id']}/members", tenant=t,
                  json={"members": [uid]}), 204)
    ok(server.api("POST", f"/organizations/{org['id']}/members/{quote(uid)}/roles", tenant=t,
                  json={"roles": [rid]}), 204)
    users = server.api("GET", f"/roles/{rid}/users", tenant=t).json()
    assert sorted(u["user_id"] for u in users) == sorted([uid, other])
    ok(server.api("DELETE", f"/users/{quote(other)}/roles", tenant=t, json={"roles": [rid]}), 204)

    ok(server.api("DELETE", f"/roles/{rid}"), 204)
    assert server.api("GET", f"/users/{quote(uid)}/roles", tenant=t).json() == []
    assert server.api("GET", f"/organizations/{org['id']}/members/{quote(uid)}/roles",
                      tenant=t).json() == []
    assert server.api("GET", f"/users/{quote(uid)}", tenant=t).status_code == 200


def test_new_tenant_gets_synced_entities(server, new_tenant, cp):
    """Needs SyncService::copy_all_to in TenantService::create."""
    api = cp.rs()
    role = cp.role()
    ok(server.api("POST", f"/roles/{role['id']}/permissions",
                  json=perms(api["identifier"], "read:things")), 204)
    hidden = cp.rs(metadata={"sync": False})
    t = new_tenant()
    assert child_rs(server, t, api["id"])["is_system"] is True
    assert child_role(server, t, role["id"])["is_system"] is True
    assert role_perms(server, t, role["id"]) == {(api["identifier"], "read:things")}
    assert child_rs(server, t, hidden["id"]) is None
    # Its own management API is still there, and is not the control plane's.
    mgmt = [rs for rs in server.api("GET", "/resource-servers", tenant=t).json()
            if rs["identifier"] == "urn:keystead:management"]
    assert len(mgmt) == 1
    cp_mgmt = [rs for rs in server.api("GET", "/resource-servers").json()
               if rs["identifier"] == "urn:keystead:management"]
    assert mgmt[0]["id"] != cp_mgmt[0]["id"]


def test_synced_api_and_role_work_for_tokens_on_the_child(server, new_tenant, cp):
    """A child's user holding a synced role gets its permissions in a token for the synced API."""
    api = cp.rs(enforce_policies=True, token_dialect="access_token_authz")
    rid = cp.role()["id"]
    ok(server.api("POST", f"/roles/{rid}/permissions",
                  json=perms(api["identifier"], "read:things")), 204)
    t = new_tenant()
    ok(server.api("GET", f"/resource-servers/{api['id']}", tenant=t), 200)
    email = f"{unique_id('p')}@example.com"
    uid = ok(server.api("POST", "/users", tenant=t, json={
        "email": email, "password": PASSWORD, "connection": DEFAULT_CONNECTION}), 201)["user_id"]
    ok(server.api("POST", f"/users/{quote(uid)}/roles", tenant=t, json={"roles": [rid]}), 204)
    client = ok(server.api("POST", "/clients", tenant=t, json={
        "name": "app", "app_type": "regular_web", "grant_types": ["password"]}), 201)
    r = server.token_request(t, grant_type="password", client_id=client["client_id"],
                             client_secret=client["client_secret"], username=email,
                             password=PASSWORD, audience=api["identifier"], scope="openid")
    assert r.status_code == 200, r.text
    claims = decode(r.json()["access_token"])[1]
    assert claims["permissions"] == ["read:things"]
    assert claims["tenant_id"] == t


# --- filters -----------------------------------------------------------------------------------

def test_filtered_entities_are_not_synced(server, new_tenant, cp):
    t = new_tenant()
    skipped = [cp.rs(metadata={"sync": False}), cp.rs(metadata={"internal": True}),
               cp.rs(identifier=f"internal:{unique_id('billing')}")]
    for rs in skipped:
        assert child_rs(server, t, rs["id"]) is None, rs
    synced = cp.rs(metadata={"sync": True})
    assert child_rs(server, t, synced["id"]) is not None
    roles_skipped = [cp.role(metadata={"sync": False}), cp.role(metadata={"internal": True}),
                     cp.role(name=f"internal:{unique_id('ops')}")]
    for role in roles_skipped:
        assert child_role(server, t, role["id"]) is None, role
    # An unsynced name stays free for the child's own role.
    ok(server.api("POST", "/roles", tenant=t, json={"name": roles_skipped[0]["name"]}), 201)


def test_switching_entity_filters_removes_and_restores_copies(server, new_tenant, cp):
    t = new_tenant()
    api = cp.rs()
    rid = cp.role()["id"]
    ok(server.api("POST", f"/roles/{rid}/permissions",
                  json=perms(api["identifier"], "read:things")), 204)

    ok(server.api("PATCH", f"/roles/{rid}", json={"metadata": {"sync": False}}), 200)
    assert child_role(server, t, rid) is None
    ok(server.api("PATCH", f"/roles/{rid}", json={"metadata": {}}), 200)
    assert child_role(server, t, rid)["is_system"] is True
    assert role_perms(server, t, rid) == {(api["identifier"], "read:things")}

    # A resource server that stops being synced takes the copied permissions with it.
    ok(server.api("PATCH", f"/resource-servers/{api['id']}", json={"metadata": {"internal": True}}),
       200)
    assert child_rs(server, t, api["id"]) is None
    assert role_perms(server, t, rid) == set()
    assert role_perms(server, None, rid) == {(api["identifier"], "read:things")}
    ok(server.api("PATCH", f"/resource-servers/{api['id']}", json={"metadata": {}}), 200)
    assert child_rs(server, t, api["id"])["is_system"] is True
    assert role_perms(server, t, rid) == {(api["identifier"], "read:things")}


def test_per_type_switches(server, new_tenant, cp, sync_switches):
    t = new_tenant()
    sync_switches(roles=False)
    assert server.api("GET", "/tenants/settings").json()["sync"]["roles"] is False
    role = cp.role()
    rs = cp.rs()
    assert child_role(server, t, role["id"]) is None
    assert child_rs(server, t, rs["id"]) is not None
    fresh = new_tenant()
    assert child_role(server, fresh, role["id"]) is None

    sync_switches(roles=True, resource_servers=False)
    # A write while the type is switched off removes that entity's copies.
    ok(server.api("PATCH", f"/resource-servers/{rs['id']}", json={"name": "off"}), 200)
    assert child_rs(server, t, rs["id"]) is None
    ok(server.api("PATCH", f"/roles/{role['id']}", json={"description": "on again"}), 200)
    assert child_role(server, t, role["id"])["description"] == "on again"

    sync_switches(resource_servers=True)
    ok(server.api("PATCH", f"/resource-servers/{rs['id']}", json={"name": "on"}), 200)
    assert child_rs(server, t, rs["id"])["name"] == "on"


# --- protection on the child -------------------------------------------------------------------

def test_copies_cannot_be_modified_on_the_child(server, new_tenant, cp):
    t = new_tenant()
    api = cp.rs()
    ident = api["identifier"]
    rid = cp.role()["id"]
    ok(server.api("POST", f"/roles/{rid}/permissions", json=perms(ident, "read:things")), 204)

    def refused(r, message):
        body = assert_error(r, 403)
        assert body["message"] == message
        assert body["errorCode"] == "operation_not_supported"

    refused(server.api("PATCH", f"/resource-servers/{api['id']}", tenant=t, json={"name": "x"}),
            RS_MESSAGE)
    refused(server.api("PATCH", f"/resource-servers/{quote(ident)}", tenant=t,
                       json={"name": "x"}), RS_MESSAGE)
    refused(server.api("DELETE", f"/resource-servers/{api['id']}", tenant=t), RS_MESSAGE)
    refused(server.api("PATCH", f"/roles/{rid}", tenant=t, json={"description": "x"}),
            ROLE_MESSAGE)
    refused(server.api("DELETE", f"/roles/{rid}", tenant=t), ROLE_MESSAGE)
    refused(server.api("POST", f"/roles/{rid}/permissions", tenant=t,
                       json=perms(ident, "write:things")), ROLE_MESSAGE)
    refused(server.api("DELETE", f"/roles/{rid}/permissions", tenant=t,
                       json=perms(ident, "read:things")), ROLE_MESSAGE)
    assert child_rs(server, t, api["id"])["name"] == api["name"]
    assert child_role(server, t, rid)["description"] == "synced role"
    assert role_perms(server, t, rid) == {(ident, "read:things")}

    # The child's own entities cannot take a synced identifier or name: the normal 409.
    assert_error(server.api("POST", "/resource-servers", tenant=t, json={"identifier": ident}), 409)
    name = child_role(server, t, rid)["name"]
    assert_error(server.api("POST", "/roles", tenant=t, json={"name": name}), 409)


def test_is_system_cannot_be_set(server, new_tenant, cp):
    t = new_tenant()
    for tenant in (None, t):
        before = server.api("GET", "/roles", tenant=tenant,
                            params={"include_totals": "true"}).json()["total"]
        assert_error(server.api("POST", "/roles", tenant=tenant,
                                json={"name": unique_id("r"), "is_system": True}), 400)
        assert_error(server.api("POST", "/roles", tenant=tenant,
                                json={"name": unique_id("r"), "metadata": "not an object"}), 400)
        assert_error(server.api("POST", "/resource-servers", tenant=tenant,
                                json={"identifier": f"https://{unique_id()}.test",
                                      "is_system": True}), 400)
        assert server.api("GET", "/roles", tenant=tenant,
                          params={"include_totals": "true"}).json()["total"] == before
    rid = cp.role()["id"]
    rs_id = cp.rs()["id"]
    assert_error(server.api("PATCH", f"/roles/{rid}", json={"is_system": True}), 400)
    assert_error(server.api("PATCH", f"/resource-servers/{rs_id}", json={"is_system": True}), 400)
    assert server.api("GET", f"/roles/{rid}").json()["is_system"] is False


# --- all or nothing ----------------------------------------------------------------------------

def test_a_childs_own_entity_fails_the_whole_write(server, new_tenant, cp):
    a, b = new_tenant(), new_tenant()
    ident = f"https://{unique_id('taken')}.sync.test"
    name = unique_id("taken")
    ok(server.api("POST", "/resource-servers", tenant=b, json={"identifier": ident}), 201)
    ok(server.api("POST", "/roles", tenant=b, json={"name": name}), 201)

    body = assert_error(server.api("POST", "/resource-servers", json={"identifier": ident}), 409)
    assert f"'{b}'" in body["message"], body
    assert server.api("GET", f"/resource-servers/{quote(ident)}").status_code == 404
    assert server.api("GET", f"/resource-servers/{quote(ident)}", tenant=a).status_code == 404

    roles_a = server.api("GET", "/roles", tenant=a, params={"include_totals": "true"}).json()
    body = assert_error(server.api("POST", "/roles", json={"name": name}), 409)
    assert f"'{b}'" in body["message"], body
    assert server.api("GET", "/roles", params={"name_filter": name}).json() == []
    assert server.api("GET", "/roles", tenant=a,
                      params={"include_totals": "true"}).json()["total"] == roles_a["total"]

    # A rename into the child's name: refused, the original and every copy unchanged.
    role = cp.role()
    body = assert_error(server.api("PATCH", f"/roles/{role['id']}", json={"name": name}), 409)
    assert f"'{b}'" in body["message"], body
    assert server.api("GET", f"/roles/{role['id']}").json()["name"] == role["name"]
    assert child_role(server, a, role["id"])["name"] == role["name"]
