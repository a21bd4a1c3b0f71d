"""The portal scenario of the multi-tenancy issue, end to end over real HTTP on a server of its
own (so its control plane and audit logs hold only what the scenario did):

Alice signs up at the platform's portal (a control-plane user) and creates her company's tenant
`coffee-shop` through POST /api/v2/tenants (self-serve): the tenant is provisioned, an
organization `coffee-shop` appears on the control plane and Alice is its member with the
"Tenant Admin" role. The portal asks for an org token (organization=coffee-shop, audience
urn:keystead:management); with it Alice manages coffee-shop's users at
/t/coffee-shop/api/v2/users — and gets 403 on every other tenant and on the control plane's own
management API, whose GET /api/v2/tenants lists only coffee-shop. A support engineer with
admin:organizations and no org claim reads coffee-shop, and each such call is in coffee-shop's
audit log.

Each step is a function of the Scenario state, so later steps (entity sync, runtime fallback)
slot in between the existing ones.
"""
from dataclasses import dataclass, field

from kshttp import CONTROL_PLANE, DEFAULT_CONNECTION, MGMT_AUDIENCE, assert_error, quote
from portal_helpers import (ADMIN_ORGANIZATIONS, PASSWORD, Browser, claims, create_spa_client,
                            member_roles, ok, organization_by_name, staff_token,
                            tenant_ids_listed)

TENANT = "coffee-shop"
OTHER = "tea-house"
ALICE = "alice@coffee-shop.example"


@dataclass
class Scenario:
    server: object
    portal_client: str = ""
    alice: Browser = None
    alice_id: str = ""
    user_token: str = ""
    org: dict = field(default_factory=dict)
    org_token: str = ""
    support_token: str = ""
    support_client: str = ""
    staff_calls: list = field(default_factory=list)  # paths the support engineer called

    def api(self, method, path, tenant=None, token=None, **kw):
        return self.server.api(method, path, tenant=tenant, token=token, **kw)


# --- steps ----------------------------------------------------------------------------------------

def platform_has_a_portal(s):
    """The platform registers its portal: a control-plane SPA client (bootstrap client)."""
    s.portal_client = create_spa_client(s.server, None, name="Platform Portal")
    s.alice = Browser(s.server, s.portal_client)


def alice_signs_up(s):
    """On the control plane's hosted signup page, through /authorize with PKCE."""
    tokens = s.alice.signup(ALICE, PASSWORD)
    idt = claims(tokens["id_token"])
    assert idt["iss"] == s.server.issuer() and idt["email"] == ALICE
    assert idt["aud"] == s.portal_client
    s.alice_id = idt["sub"]
    # She is a control-plane user.
    users = ok(s.server.api("GET", "/users-by-email", params={"email": ALICE}))
    assert [u["user_id"] for u in users] == [s.alice_id]
    assert users[0]["identities"][0]["connection"] == DEFAULT_CONNECTION


def alice_gets_a_user_token(s):
    s.user_token = s.alice.management_token()
    c = claims(s.user_token)
    assert c["sub"] == s.alice_id and c["tenant_id"] == CONTROL_PLANE
    assert MGMT_AUDIENCE in c["aud"] and "org_id" not in c
    assert c["permissions"] == []  # a plain user holds no management permission


def alice_creates_her_tenant_self_serve(s):
    r = s.api("POST", "/tenants", token=s.user_token,
              json={"id": TENANT, "friendly_name": "Coffee Shop"})
    body = ok(r, 201, "self-serve POST /api/v2/tenants")
    assert body["id"] == TENANT and body.get("status", "active") == "active"
    # Provisioned: it serves OIDC under its own issuer.
    disc = ok(s.server.req("GET", "/.well-known/openid-configuration", tenant=TENANT))
    assert disc["issuer"] == s.server.issuer(TENANT)


def the_organization_stands_for_the_tenant(s):
    s.org = organization_by_name(s.server, TENANT)
    assert s.org["id"].startswith("org_") and s.org["name"] == TENANT
    assert s.org["display_name"] == "Coffee Shop"
    assert s.org["metadata"]["tenant_id"] == TENANT


def alice_is_its_tenant_admin(s):
    members = ok(s.server.api("GET", f"/organizations/{s.org['id']}/members"))
    assert [m["user_id"] for m in members] == [s.alice_id], members
    roles = member_roles(s.server, s.org["id"], s.alice_id)
    assert [r["name"] for r in roles] == ["Tenant Admin"], roles


def alice_gets_an_org_token(s):
    """/authorize?organization=coffee-shop&audience=urn:keystead:management, then the code
    exchange; Alice's portal session answers without a login page."""
    r, verifier, state = s.alice.authorize(organization=TENANT, audience=MGMT_AUDIENCE)
    tokens = s.alice.exchange(s.alice.code_from(r, state), verifier)
    s.org_token = tokens["access_token"]
    c = claims(s.org_token)
    assert c["iss"] == s.server.issuer() and c["sub"] == s.alice_id
    assert c["org_id"] == s.org["id"] and c["org_name"] == TENANT
    assert MGMT_AUDIENCE in c["aud"]
    perms = set(c["permissions"])
    assert {"read:users", "create:users", "delete:users", "read:logs"} <= perms, perms
    assert not perms & {ADMIN_ORGANIZATIONS, "create:tenants"}, perms
    assert claims(tokens["id_token"])["org_id"] == s.org["id"]


def alice_manages_her_users(s):
    base = {"tenant": TENANT, "token": s.org_token}
    barista = "barista@coffee-shop.example"
    created = ok(s.api("POST", "/users", json={"email": barista, "password": PASSWORD,
                                               "connection": DEFAULT_CONNECTION}, **base), 201)
    uid = created["user_id"]
    assert uid in {u["user_id"] for u in ok(s.api("GET", "/users", **base))}
    assert ok(s.api("GET", f"/users/{quote(uid)}", **base))["email"] == barista
    # The user lives in coffee-shop, not on the control plane.
    assert ok(s.server.api("GET", "/users-by-email", params={"email": barista})) == []
    r = s.api("DELETE", f"/users/{quote(uid)}", **base)
    assert r.status_code == 204, r.text
    assert_error(s.api("GET", f"/users/{quote(uid)}", **base), 404)
    assert uid not in {u["user_id"] for u in ok(s.api("GET", "/users", **base))}
    # A user who stays, for the support engineer to read.
    ok(s.api("POST", "/users", json={"email": "manager@coffee-shop.example",
                                     "password": PASSWORD, "connection": DEFAULT_CONNECTION},
             **base), 201)


def another_customer_exists(s):
    ok(s.server.api("POST", "/tenants", json={"id": OTHER, "friendly_name": "Tea House"}), 201)
    ok(s.server.api("POST", "/users", tenant=OTHER, json={
        "email": "owner@tea-house.example", "password": PASSWORD,
        "connection": DEFAULT_CONNECTION}), 201)


def alice_is_refused_everywhere_else(s):
    for method, path, body in (("GET", "/users", None),
                               ("GET", "/users-by-email?email=owner@tea-house.example", None),
                               ("POST", "/users", {"email": "x@tea-house.example",
                                                   "password": PASSWORD,
                                                   "connection": DEFAULT_CONNECTION})):
        r = s.api(method, path, tenant=OTHER, token=s.org_token, json=body)
        assert_error(r, 403)
        assert "tea-house.example" not in r.text.replace("x@tea-house.example", "")
    # The control plane's own management API, Alice's org token and her user token alike.
    for token in (s.org_token, s.user_token):
        for method, path in (("GET", "/users"), ("GET", "/clients"), ("GET", "/roles"),
                             ("GET", "/organizations"), ("GET", f"/organizations/{s.org['id']}"),
                             ("GET", "/logs"), ("GET", "/tenants/settings"),
                             ("GET", f"/tenants/{OTHER}"), ("DELETE", f"/tenants/{OTHER}"),
                             ("POST", f"/tenants/{TENANT}/suspend")):
            assert_error(s.api(method, path, token=token), 403)


def the_tenant_list_shows_only_coffee_shop(s):
    for token in (s.user_token, s.org_token):
        assert tenant_ids_listed(s.api("GET", "/tenants", token=token)) == [TENANT]
    # Platform staff see every tenant.
    assert tenant_ids_listed(s.server.api("GET", "/tenants")) == \
        sorted([CONTROL_PLANE, TENANT, OTHER])


def support_engineer_reads_coffee_shop(s):
    """A control-plane M2M client with admin:organizations and no org claim (rule c)."""
    s.support_token = staff_token(s.server, ("read:users",))
    s.support_client = claims(s.support_token)["azp"]
    users = ok(s.api("GET", "/users", tenant=TENANT, token=s.support_token))
    manager = [u for u in users if u["email"] == "manager@coffee-shop.example"]
    assert len(manager) == 1, users
    s.staff_calls.append(f"/t/{TENANT}/api/v2/users")
    uid = manager[0]["user_id"]
    ok(s.api("GET", f"/users/{quote(uid)}", tenant=TENANT, token=s.support_token))
    s.staff_calls.append(f"/t/{TENANT}/api/v2/users/{quote(uid)}")
    # The support engineer's scopes bound what staff may do.
    assert_error(s.api("GET", "/clients", tenant=TENANT, token=s.support_token), 403)


def each_staff_call_is_in_coffee_shops_audit_log(s):
    """Read by Alice herself with her org token; her own calls are rule (b), not audited as
    staff, so the staff entries are exactly the support engineer's calls."""
    logs = ok(s.api("GET", "/logs", tenant=TENANT, token=s.org_token,
                    params={"type": "sapi", "per_page": 100}))
    assert all(e["type"] == "sapi" for e in logs), logs
    assert sorted(e["details"]["path"] for e in logs) == sorted(s.staff_calls), logs
    for e in logs:
        assert e["client_id"] == s.support_client, e
        assert e["details"]["method"] == "GET" and e["details"]["scope"] == "read:users", e
        assert e["details"]["issuing_tenant"] == CONTROL_PLANE, e
        assert e.get("log_id") and e.get("date"), e
    # The other tenant's log does not hear of it.
    other = ok(s.server.api("GET", "/logs", tenant=OTHER, params={"per_page": 100}))
    assert not [e for e in other if e.get("client_id") == s.support_client], other


# --- the scenario ---------------------------------------------------------------------------------

SCENARIO = [
    platform_has_a_portal,
    alice_signs_up,
    alice_gets_a_user_token,
    alice_creates_her_tenant_self_serve,
    the_organization_stands_for_the_tenant,
    alice_is_its_tenant_admin,
    alice_gets_an_org_token,
    alice_manages_her_users,
    another_customer_exists,
    alice_is_refused_everywhere_else,
    the_tenant_list_shows_only_coffee_shop,
    support_engineer_reads_coffee_shop,
    each_staff_call_is_in_coffee_shops_audit_log,
]


def test_portal_scenario(start_server):
    s = Scenario(start_server(name="portal"))
    for step in SCENARIO:
        step(s)
