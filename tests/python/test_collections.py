"""Every Management API collection of the Engine, on the control plane and on a child tenant,
and the extra calls (roles, members, permissions)."""
import uuid

import pytest

from keystead import Engine, NotFoundError

from conftest import DB, PASSWORD, unique

WHERE = [pytest.param(False, id="control-plane"), pytest.param(True, id="child-tenant")]


def _hex() -> str:
    return uuid.uuid4().hex[:10]


# Per collection: (attribute, create fields, the id member, update fields).
SPECS = {
    "users": (lambda: {"connection": DB, "email": f"u{_hex()}@example.com",
                       "password": PASSWORD}, "user_id", {"name": "Renamed User"}),
    "clients": (lambda: {"name": unique("app"), "app_type": "regular_web",
                         "callbacks": ["https://app.example/cb"]},
                "client_id", {"description": "changed"}),
    "connections": (lambda: {"name": "db" + _hex(), "strategy": "auth0"}, "id",
                    {"display_name": "Renamed"}),
    "resource_servers": (lambda: {"name": unique("api"), "identifier": "https://" + _hex(),
                                  "scopes": [{"value": "read:things"}]},
                         "id", {"name": "Renamed API"}),
    "roles": (lambda: {"name": unique("role"), "description": "first"}, "id",
              {"description": "changed"}),
    "organizations": (lambda: {"name": "org-" + _hex(), "display_name": "Org"}, "id",
                      {"display_name": "Renamed Org"}),
    "hooks": (lambda: {"name": unique("hook"), "trigger_id": "post-login",
                       "code": "function onExecutePostLogin(event, api)\nend"},
              "id", {"enabled": False}),
}


@pytest.mark.parametrize("child", WHERE)
@pytest.mark.parametrize("name", sorted(SPECS))
def test_crud(engine: Engine, tenant: str, name: str, child: bool):
    where = tenant if child else None
    collection = getattr(engine, name)
    make, key, change = SPECS[name]
    fields = make()
    created = collection.create(fields, tenant=where)
    eid = created[key]
    for k, v in fields.items():
        if k not in ("password", "connection"):  # not echoed for users
            assert created[k] == v, (k, created)
    assert collection.get(eid, tenant=where)[key] == eid
    assert eid in [e[key] for e in collection.list(tenant=where, per_page=100)]
    page = collection.list(tenant=where, include_totals=True, per_page=1)
    assert page["total"] >= 1 and page["limit"] == 1
    updated = collection.update(eid, change, tenant=where)
    assert {k: updated[k] for k in change} == change
    assert collection.get(eid, tenant=where)[next(iter(change))] == next(iter(change.values()))
    assert collection.delete(eid, tenant=where) is None
    with pytest.raises(NotFoundError):
        collection.get(eid, tenant=where)


def test_an_entity_lives_in_its_tenant(engine: Engine, tenant: str):
    user = engine.users.create(connection=DB, email=f"only-{_hex()}@example.com",
                               password=PASSWORD, tenant=tenant)
    assert engine.users.get(user["user_id"], tenant=tenant)["email"] == user["email"]
    with pytest.raises(NotFoundError):
        engine.users.get(user["user_id"])


@pytest.mark.parametrize("child", WHERE)
def test_client_grants_crud(engine: Engine, tenant: str, child: bool):
    where = tenant if child else None
    api = engine.resource_servers.create(name=unique("api"), identifier="https://" + _hex(),
                                         scopes=[{"value": "read:x"}, {"value": "write:x"}],
                                         tenant=where)
    client = engine.clients.create(name=unique("m2m"), app_type="non_interactive", tenant=where)
    grant = engine.client_grants.create({"client_id": client["client_id"]},
                                        audience=api["identifier"], scope=["read:x"],
                                        tenant=where)
    assert grant["id"].startswith("cgr_") and grant["scope"] == ["read:x"]
    assert engine.client_grants.get(grant["id"], tenant=where)["audience"] == api["identifier"]
    listed = engine.client_grants.list(tenant=where, client_id=client["client_id"])
    assert [g["id"] for g in listed] == [grant["id"]]
    updated = engine.client_grants.update(grant["id"], scope=["read:x", "write:x"], tenant=where)
    assert sorted(updated["scope"]) == ["read:x", "write:x"]
    engine.client_grants.delete(grant["id"], tenant=where)
    with pytest.raises(NotFoundError):
        engine.client_grants.get(grant["id"], tenant=where)
    assert engine.client_grants.list(tenant=where, client_id=client["client_id"]) == []


def test_tenants_lifecycle(engine: Engine):
    tid = unique("shop")
    created = engine.tenants.create({"id": tid}, friendly_name="Shop")
    assert created["id"] == tid and created["status"] == "active"
    assert tid in [t["id"] for t in engine.tenants.list(per_page=100)]
    assert engine.tenants.get(tid)["friendly_name"] == "Shop"
    assert engine.tenants.update(tid, friendly_name="Shop 2")["friendly_name"] == "Shop 2"
    # The organization that stands for it, on the control plane.
    org = engine.organizations.get_by_name(tid)
    assert org["display_name"] == "Shop" and org["metadata"] == {"tenant_id": tid}
    assert engine.tenants.suspend(tid)["status"] == "suspended"
    assert engine.handle("GET", f"/t/{tid}/.well-known/openid-configuration").status == 403
    assert engine.tenants.resume(tid)["status"] == "active"
    assert engine.handle("GET", f"/t/{tid}/.well-known/openid-configuration").status == 200
    engine.tenants.delete(tid)
    with pytest.raises(NotFoundError):
        engine.tenants.get(tid)
    with pytest.raises(NotFoundError):
        engine.organizations.get_by_name(tid)


@pytest.mark.parametrize("child", WHERE)
def test_user_roles(engine: Engine, tenant: str, child: bool):
    where = tenant if child else None
    user = engine.users.create(connection=DB, email=f"r{_hex()}@example.com", password=PASSWORD,
                               tenant=where)
    uid = user["user_id"]
    assert "|" in uid  # quoted in the path by the binding
    r1 = engine.roles.create(name=unique("viewer"), tenant=where)
    r2 = engine.roles.create(name=unique("editor"), tenant=where)
    assert engine.users.roles(uid, tenant=where) == []
    engine.users.assign_roles(uid, [r1["id"], r2["id"]], tenant=where)
    assert sorted(r["id"] for r in engine.users.roles(uid, tenant=where)) == sorted(
        [r1["id"], r2["id"]])
    engine.users.remove_roles(uid, [r1["id"]], tenant=where)
    assert [r["id"] for r in engine.users.roles(uid, tenant=where)] == [r2["id"]]


@pytest.mark.parametrize("child", WHERE)
def test_role_permissions(engine: Engine, tenant: str, child: bool):
    where = tenant if child else None
    ident = "https://" + _hex()
    engine.resource_servers.create(name=unique("api"), identifier=ident, tenant=where,
                                   scopes=[{"value": "read:a"}, {"value": "write:a"}])
    role = engine.roles.create(name=unique("perm"), tenant=where)
    engine.roles.add_permissions(role["id"], [
        (ident, "read:a"), {"resource_server_identifier": ident, "permission_name": "write:a"}],
        tenant=where)
    perms = engine.roles.permissions(role["id"], tenant=where)
    assert sorted(p["permission_name"] for p in perms) == ["read:a", "write:a"]
    engine.roles.remove_permissions(role["id"], [(ident, "write:a")], tenant=where)
    assert [p["permission_name"] for p in engine.roles.permissions(role["id"], tenant=where)] \
        == ["read:a"]


@pytest.mark.parametrize("child", WHERE)
def test_organization_members(engine: Engine, tenant: str, child: bool):
    where = tenant if child else None
    org = engine.organizations.create(name="team-" + _hex(), tenant=where)
    assert engine.organizations.get_by_name(org["name"], tenant=where)["id"] == org["id"]
    users = [engine.users.create(connection=DB, email=f"m{_hex()}@example.com",
                                 password=PASSWORD, tenant=where)["user_id"] for _ in range(2)]
    role = engine.roles.create(name=unique("member-role"), tenant=where)
    engine.organizations.add_members(org["id"], users, tenant=where)
    members = engine.organizations.members(org["id"], tenant=where)
    assert sorted(m["user_id"] for m in members) == sorted(users)
    engine.organizations.add_member_roles(org["id"], users[0], [role["id"]], tenant=where)
    assert [r["id"] for r in engine.organizations.member_roles(org["id"], users[0],
                                                               tenant=where)] == [role["id"]]
    engine.organizations.remove_members(org["id"], [users[1]], tenant=where)
    assert [m["user_id"] for m in engine.organizations.members(org["id"], tenant=where)] == \
        [users[0]]
