"""Tenant isolation over real HTTP: the management access rules (DESIGN.md "Tenancy" (a)(b)(c)),
allowed and refused, and a cross-tenant attack suite.

Two child tenants A and B, each with one of every entity (Cast), plus the control plane. Every
Management API route (ROUTES, checked against the C++ sources by test_every_management_route_
is_in_the_attack_table) is attacked with A's management token, A's ids in B's URL, the tenant
header, an organization token for A and that token on the control plane's own API; every OIDC
route (OIDC_ROUTE_TESTS, checked likewise) with A's clients, tokens, login state, tickets and
session cookie at B. The answer is always 401/403/404 (or the RFC's inert 200), never a byte of
another tenant's data: no response contains an id, email or name tag of A or B that the request
did not itself carry.
"""
import json
import pathlib
import re
import secrets
import urllib.parse
from types import SimpleNamespace

import pytest
import requests

from jwtutil import b64url_encode, encode_unsigned
from kshttp import (CONTROL_PLANE, DEFAULT_CONNECTION, MGMT_AUDIENCE, assert_error,
                    assert_oauth_error, quote, unique_id)
from portal_helpers import (ADMIN_ORGANIZATIONS, PASSWORD, Browser, claims, client_token,
                            create_m2m_client, create_spa_client, create_user, hidden, ok,
                            organization_by_name, pkce, redirect_params, staff_token,
                            tenant_ids_listed, tenant_management_token)

REPO = pathlib.Path(__file__).resolve().parents[2]
THINGS = "read:things"


def assoc(resp, what):
    """Association writes answer 201 or 204 (DESIGN.md "Exact rules")."""
    assert resp.status_code in (200, 201, 204), f"{what}: {resp.status_code} {resp.text}"


# --- the cast of a tenant -----------------------------------------------------------------------

class Cast:
    """A child tenant with one of every entity, made by the bootstrap client (platform staff).
    Every name carries `tag`, so a response that mentions any of them is found by the tag."""

    def __init__(self, server, tenant):
        self.server, self.tenant, self.name = server, tenant, tenant
        self.tag = tag = unique_id("x")
        self.origin = f"https://app-{tag}.example"
        self.callback = self.origin + "/cb"
        self.logout_url = self.origin + "/bye"

        def call(method, path, status=200, **kw):
            return ok(server.api(method, path, tenant=tenant, **kw), status,
                      f"{tenant}: {method} {path}")

        def link(method, path, body):
            assoc(server.api(method, path, tenant=tenant, json=body), f"{tenant}: {path}")

        self.email = f"victim-{tag}@example.com"
        self.user_id = create_user(server, tenant, email=self.email,
                                   name=f"Victim {tag}")["user_id"]
        self.rs_identifier = f"https://api-{tag}.example/"
        self.rs_id = call("POST", "/resource-servers", 201, json={
            "identifier": self.rs_identifier, "name": f"api-{tag}",
            "scopes": [{"value": THINGS, "description": f"things of {tag}"}]})["id"]
        self.role_id = call("POST", "/roles", 201, json={
            "name": f"role-{tag}", "description": f"role of {tag}"})["id"]
        link("POST", f"/roles/{self.role_id}/permissions", self.permissions())
        client = call("POST", "/clients", 201, json={
            "name": f"app-{tag}", "app_type": "regular_web", "callbacks": [self.callback],
            "allowed_logout_urls": [self.logout_url], "web_origins": [self.origin],
            "allowed_origins": [self.origin], "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token", "password",
                            "client_credentials"]})
        self.client_id, self.client_secret = client["client_id"], client["client_secret"]
        self.grant_id = call("POST", "/client-grants", 201, json={
            "client_id": self.client_id, "audience": self.rs_identifier,
            "scope": [THINGS]})["id"]
        self.connection_name = f"google-{tag}"
        self.connection_id = call("POST", "/connections", 201, json={
            "name": self.connection_name, "strategy": "google-oauth2",
            "options": {"client_id": f"g-{tag}", "client_secret": "g-secret"}})["id"]
        org = call("POST", "/organizations", 201, json={"name": f"org-{tag}",
                                                        "display_name": f"Org {tag}"})
        self.org_id, self.org_name = org["id"], org["name"]
        link("POST", f"/organizations/{self.org_id}/members", {"members": [self.user_id]})
        link("POST", f"/organizations/{self.org_id}/members/{quote(self.user_id)}/roles",
             {"roles": [self.role_id]})
        link("POST", f"/users/{quote(self.user_id)}/roles", {"roles": [self.role_id]})
        link("POST", f"/users/{quote(self.user_id)}/permissions", self.permissions())
        self.spa_client_id = create_spa_client(server, tenant, name=f"spa-{tag}",
                                               callbacks=(self.callback,), origins=(self.origin,))
        self.kid = call("GET", "/keys/signing")[0]["kid"]
        self.hook_id = call("POST", "/hooks", 201, json={
            "name": f"hook-{tag}", "trigger_id": "post-login",
            "code": f"-- the hook of {tag}: defines nothing, so it never runs"})["id"]
        self.log_id = call("GET", "/logs", params={"per_page": 1})[0]["log_id"]
        self.token = tenant_management_token(server, tenant)

    def permissions(self):
        return {"permissions": [{"resource_server_identifier": self.rs_identifier,
                                 "permission_name": THINGS}]}

    @property
    def ids(self):
        return {"user": self.user_id, "client": self.client_id, "grant": self.grant_id,
                "connection": self.connection_id, "rs": self.rs_id, "role": self.role_id,
                "org": self.org_id, "org_name": self.org_name, "log": self.log_id,
                "kid": self.kid, "hook": self.hook_id, "tenant": self.name}

    def sentinels(self):
        return {self.tag, self.email, self.user_id, self.client_id, self.spa_client_id,
                self.grant_id, self.connection_id, self.rs_id, self.role_id, self.org_id,
                self.log_id, self.kid, self.hook_id}


def control_plane_cast(server, portal_client_id, amy, tenant_a):
    """Real ids of control-plane entities, for the org token on the control plane's own API.
    Nothing new is created there that entity sync would copy to every tenant."""
    def first(path, key, pred, **params):
        items = ok(server.api("GET", path, params={"per_page": 100, **params}))
        found = [x for x in items if pred(x)]
        assert found, f"control plane {path}: nothing matches in {items}"
        return found[0][key]

    c = SimpleNamespace(tenant=None, name=CONTROL_PLANE, email=amy["email"],
                        user_id=amy["user_id"], client_id=portal_client_id,
                        spa_client_id=portal_client_id, tag=amy["email"].split("@")[0])
    c.role_id = first("/roles", "id", lambda r: r["name"] == "Tenant Admin")
    c.rs_id = first("/resource-servers", "id", lambda r: r["identifier"] == MGMT_AUDIENCE)
    c.rs_identifier = MGMT_AUDIENCE
    c.connection_id = first("/connections", "id", lambda x: x["name"] == DEFAULT_CONNECTION)
    support_id, _ = create_m2m_client(server, None, ("read:users",), name=unique_id("cp-m2m"))
    c.grant_id = first("/client-grants", "id", lambda g: True, client_id=support_id)
    org = organization_by_name(server, tenant_a)
    c.org_id, c.org_name = org["id"], org["name"]
    c.kid = ok(server.api("GET", "/keys/signing"))[0]["kid"]
    c.log_id = ok(server.api("GET", "/logs", params={"per_page": 1}))[0]["log_id"]
    # A hook that defines no function: it never runs, whatever it is attached to.
    c.hook_id = ok(server.api("POST", "/hooks", json={
        "name": unique_id("cp-hook"), "trigger_id": "post-user-registration",
        "code": "-- defines nothing"}), 201, "control-plane hook")["id"]
    c.permissions = lambda: {"permissions": [{"resource_server_identifier": MGMT_AUDIENCE,
                                              "permission_name": "read:users"}]}
    c.ids = {"user": c.user_id, "client": c.client_id, "grant": c.grant_id,
             "connection": c.connection_id, "rs": c.rs_id, "role": c.role_id, "org": c.org_id,
             "org_name": c.org_name, "log": c.log_id, "kid": c.kid, "hook": c.hook_id,
             "tenant": CONTROL_PLANE}
    c.sentinels = lambda: {c.email, c.user_id, c.client_id, c.grant_id, c.log_id}
    return c


@pytest.fixture(scope="module")
def arena(server, new_tenant):
    """A: created self-serve by the control-plane user Amy, who holds an org token for it.
    B: created by platform staff. Both populated by Cast."""
    portal = create_spa_client(server, None, name=unique_id("portal"))
    amy = create_user(server, None, email=f"{unique_id('amy')}@example.com")
    amy_browser = Browser(server, portal)
    amy_token = amy_browser.login(amy["email"], audience=MGMT_AUDIENCE)["access_token"]
    tenant_a = unique_id("a")
    ok(server.api("POST", "/tenants", token=amy_token,
                  json={"id": tenant_a, "friendly_name": "Tenant A"}), 201, "self-serve A")
    A, B = Cast(server, tenant_a), Cast(server, new_tenant("Tenant B"))
    org_token = amy_browser.org_token(tenant_a)
    assert claims(org_token)["org_name"] == tenant_a
    cp = control_plane_cast(server, portal, amy, tenant_a)
    return SimpleNamespace(A=A, B=B, cp=cp, portal=portal, amy=amy, amy_browser=amy_browser,
                           amy_token=amy_token, org_token=org_token)


# --- the Management API route table -------------------------------------------------------------

def _hex():
    return secrets.token_hex(5)


class Route:
    """One Management API route. body/query: functions of the cast whose entities they name.
    home "cp": the Tenants API, which lives on the control plane only. body_refs: the body names
    other entities (so B's URL with A's ids in the body must be 404)."""

    def __init__(self, method, path, body=None, query=None, home="tenant", body_refs=False):
        self.method, self.path, self.home = method, path, home
        self.body, self.query, self.body_refs = body, query, body_refs

    @property
    def id(self):
        return f"{self.method} {self.path}"

    @property
    def has_params(self):
        return ":" in self.path

    def __repr__(self):
        return self.id


def _user_body(c):
    return {"email": f"intruder-{_hex()}@example.com", "password": PASSWORD,
            "connection": DEFAULT_CONNECTION}


ROUTES = [
    # users
    Route("GET", "/api/v2/users", query=lambda c: {"email": c.email}),
    Route("POST", "/api/v2/users", body=_user_body),
    Route("GET", "/api/v2/users-by-email", query=lambda c: {"email": c.email}),
    Route("GET", "/api/v2/users/:id"),
    Route("PATCH", "/api/v2/users/:id", body=lambda c: {"name": "pwned"}),
    Route("DELETE", "/api/v2/users/:id"),
    Route("GET", "/api/v2/users/:id/roles"),
    Route("POST", "/api/v2/users/:id/roles", body=lambda c: {"roles": [c.role_id]},
          body_refs=True),
    Route("DELETE", "/api/v2/users/:id/roles", body=lambda c: {"roles": [c.role_id]},
          body_refs=True),
    Route("GET", "/api/v2/users/:id/permissions"),
    Route("POST", "/api/v2/users/:id/permissions", body=lambda c: c.permissions()),
    Route("DELETE", "/api/v2/users/:id/permissions", body=lambda c: c.permissions()),
    Route("GET", "/api/v2/users/:id/organizations"),
    # user blocks
    Route("GET", "/api/v2/user-blocks", query=lambda c: {"identifier": c.email}),
    Route("DELETE", "/api/v2/user-blocks", query=lambda c: {"identifier": c.email}),
    Route("GET", "/api/v2/user-blocks/:id"),
    Route("DELETE", "/api/v2/user-blocks/:id"),
    # clients
    Route("GET", "/api/v2/clients"),
    Route("POST", "/api/v2/clients", body=lambda c: {"name": f"intruder-{_hex()}"}),
    Route("GET", "/api/v2/clients/:id"),
    Route("PATCH", "/api/v2/clients/:id", body=lambda c: {"name": "pwned"}),
    Route("DELETE", "/api/v2/clients/:id"),
    Route("POST", "/api/v2/clients/:id/rotate-secret"),
    # client grants
    Route("GET", "/api/v2/client-grants", query=lambda c: {"client_id": c.client_id}),
    Route("POST", "/api/v2/client-grants", body_refs=True, body=lambda c: {
        "client_id": c.spa_client_id, "audience": c.rs_identifier, "scope": [THINGS]}),
    Route("GET", "/api/v2/client-grants/:id"),
    Route("PATCH", "/api/v2/client-grants/:id", body=lambda c: {"scope": []}),
    Route("DELETE", "/api/v2/client-grants/:id"),
    # connections
    Route("GET", "/api/v2/connections"),
    Route("POST", "/api/v2/connections",
          body=lambda c: {"name": f"intruder-{_hex()}", "strategy": "auth0"}),
    Route("GET", "/api/v2/connections/:id"),
    Route("PATCH", "/api/v2/connections/:id", body=lambda c: {"display_name": "pwned"}),
    Route("DELETE", "/api/v2/connections/:id"),
    # resource servers
    Route("GET", "/api/v2/resource-servers"),
    Route("POST", "/api/v2/resource-servers", body=lambda c: {
        "identifier": f"https://intruder-{_hex()}.example/", "name": "intruder"}),
    Route("GET", "/api/v2/resource-servers/:id"),
    Route("PATCH", "/api/v2/resource-servers/:id", body=lambda c: {"name": "pwned"}),
    Route("DELETE", "/api/v2/resource-servers/:id"),
    # roles
    Route("GET", "/api/v2/roles"),
    Route("POST", "/api/v2/roles", body=lambda c: {"name": f"intruder-{_hex()}"}),
    Route("GET", "/api/v2/roles/:id"),
    Route("PATCH", "/api/v2/roles/:id", body=lambda c: {"description": "pwned"}),
    Route("DELETE", "/api/v2/roles/:id"),
    Route("GET", "/api/v2/roles/:id/permissions"),
    Route("POST", "/api/v2/roles/:id/permissions", body=lambda c: c.permissions()),
    Route("DELETE", "/api/v2/roles/:id/permissions", body=lambda c: c.permissions()),
    Route("GET", "/api/v2/roles/:id/users"),
    Route("POST", "/api/v2/roles/:id/users", body=lambda c: {"users": [c.user_id]},
          body_refs=True),
    # organizations
    Route("GET", "/api/v2/organizations"),
    Route("POST", "/api/v2/organizations", body=lambda c: {"name": f"intruder-{_hex()}"}),
    Route("GET", "/api/v2/organizations/name/:name"),
    Route("GET", "/api/v2/organizations/:id"),
    Route("PATCH", "/api/v2/organizations/:id", body=lambda c: {"display_name": "pwned"}),
    Route("DELETE", "/api/v2/organizations/:id"),
    Route("GET", "/api/v2/organizations/:id/members"),
    Route("POST", "/api/v2/organizations/:id/members", body=lambda c: {"members": [c.user_id]},
          body_refs=True),
    Route("DELETE", "/api/v2/organizations/:id/members",
          body=lambda c: {"members": [c.user_id]}),
    Route("GET", "/api/v2/organizations/:id/members/:user_id/roles"),
    Route("POST", "/api/v2/organizations/:id/members/:user_id/roles",
          body=lambda c: {"roles": [c.role_id]}, body_refs=True),
    Route("DELETE", "/api/v2/organizations/:id/members/:user_id/roles",
          body=lambda c: {"roles": [c.role_id]}, body_refs=True),
    # logs
    Route("GET", "/api/v2/logs", query=lambda c: {"user_id": c.user_id}),
    Route("GET", "/api/v2/logs/:id"),
    # signing keys
    Route("GET", "/api/v2/keys/signing"),
    Route("POST", "/api/v2/keys/signing/rotate"),
    Route("GET", "/api/v2/keys/signing/:kid"),
    Route("PUT", "/api/v2/keys/signing/:kid/revoke"),
    # hooks
    Route("GET", "/api/v2/hooks"),
    Route("POST", "/api/v2/hooks",
          body=lambda c: {"trigger_id": "post-login", "code": "-- intruder"}),
    Route("GET", "/api/v2/hooks/:id"),
    Route("PATCH", "/api/v2/hooks/:id", body=lambda c: {"code": "-- pwned"}),
    Route("DELETE", "/api/v2/hooks/:id"),
    # branding
    Route("GET", "/api/v2/branding"),
    Route("PATCH", "/api/v2/branding", body=lambda c: {"colors": {"primary": "#ff0000"}}),
    # email provider and tickets
    Route("GET", "/api/v2/emails/provider"),
    Route("POST", "/api/v2/emails/provider", body=lambda c: {
        "name": "smtp", "enabled": True, "default_from_address": "pwned@example.com",
        "credentials": {"smtp_host": "127.0.0.1", "smtp_port": 2525, "smtp_user": "u",
                        "smtp_pass": "p"}}),
    Route("PATCH", "/api/v2/emails/provider",
          body=lambda c: {"default_from_address": "pwned@example.com"}),
    Route("DELETE", "/api/v2/emails/provider"),
    Route("POST", "/api/v2/tickets/password-change", body=lambda c: {"user_id": c.user_id},
          body_refs=True),
    Route("POST", "/api/v2/tickets/email-verification", body=lambda c: {"user_id": c.user_id},
          body_refs=True),
    # tenant settings (any tenant) and the Tenants API (control plane only)
    Route("GET", "/api/v2/tenants/settings"),
    Route("PATCH", "/api/v2/tenants/settings", body=lambda c: {"friendly_name": "pwned"}),
    Route("GET", "/api/v2/tenants", home="cp"),
    Route("POST", "/api/v2/tenants", home="cp",
          body=lambda c: {"id": unique_id("intruder"), "friendly_name": "intruder"}),
    Route("GET", "/api/v2/tenants/:id", home="cp"),
    Route("PATCH", "/api/v2/tenants/:id", home="cp", body=lambda c: {"friendly_name": "pwned"}),
    Route("DELETE", "/api/v2/tenants/:id", home="cp"),
    Route("POST", "/api/v2/tenants/:id/suspend", home="cp"),
    Route("POST", "/api/v2/tenants/:id/resume", home="cp"),
    Route("POST", "/api/v2/tenants/:id/move", home="cp", body=lambda c: {"isolation": "database"}),
    Route("GET", "/api/v2/tenants/:id/export", home="cp"),
    Route("POST", "/api/v2/tenants/import", home="cp",
          body=lambda c: {"format": "keystead-tenant-export", "version": 1}),
]

# What a path parameter names, by the route group (the segment after /api/v2/).
_PARAM_KIND = {"users": "user", "user-blocks": "user", "clients": "client",
               "client-grants": "grant", "connections": "connection", "resource-servers": "rs",
               "roles": "role", "organizations": "org", "logs": "log", "hooks": "hook",
               "tenants": "tenant"}


def fill(path, cast):
    """The route's path with the cast's ids."""
    segs = path.split("/")
    out = []
    for seg in segs:
        if seg == ":id":
            out.append(quote(cast.ids[_PARAM_KIND[segs[3]]]))
        elif seg == ":user_id":
            out.append(quote(cast.ids["user"]))
        elif seg == ":kid":
            out.append(quote(cast.ids["kid"]))
        elif seg == ":name":
            out.append(quote(cast.ids["org_name"]))
        else:
            assert not seg.startswith(":"), f"no value for {seg} in {path}: extend fill()"
            out.append(seg)
    return "/".join(out)


def source_routes(predicate):
    """(METHOD, path) of every r.add(...) in core/ whose path satisfies predicate."""
    found = set()
    pattern = re.compile(r'\br\.add\(\s*"([A-Z]+)"\s*,\s*"([^"]+)"', re.S)
    for src in sorted((REPO / "core").rglob("*.cpp")):
        for method, path in pattern.findall(src.read_text(encoding="utf-8")):
            if predicate(path):
                found.add((method, path))
    return found


# --- one attack, checked ------------------------------------------------------------------------

def attack(server, route, *, token, url_tenant, ids, body_cast=None, headers=None,
           query_cast=None):
    """Sends the route to url_tenant's URL (None: the control-plane host) with the ids of `ids`,
    the body of `body_cast` (default: ids) and the query of `query_cast` (default: ids)."""
    body_cast = body_cast or ids
    query_cast = query_cast or ids
    path = fill(route.path, ids)
    body = route.body(body_cast) if route.body else None
    params = route.query(query_cast) if route.query else None
    r = server.req(route.method, path, tenant=url_tenant, token=token, json=body,
                   params=params, headers=headers)
    r.sent = " ".join([urllib.parse.unquote(r.request.url), json.dumps(body or {}),
                       json.dumps(headers or {})])
    return r


def resolved_tenant(url_tenant, headers):
    """Which tenant the server resolves: the /t/{id} path first, then the tenant header, else
    the control plane (dev mode)."""
    if url_tenant:
        return url_tenant
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    return headers.get("tenant-id") or headers.get("x-tenant-id") or CONTROL_PLANE


def expected_refusal(route, url_tenant, headers):
    """403, except the Tenants API reached through a child tenant: 404 (it lives on the
    control plane only)."""
    if route.home == "cp" and resolved_tenant(url_tenant, headers) != CONTROL_PLANE:
        return 404
    return 403


def assert_no_data(resp, *casts):
    """No id, email or name tag of the casts that the request did not carry itself."""
    for cast in casts:
        sent = getattr(resp, "sent", "")
        for s in cast.sentinels():
            if s in sent or quote(s) in sent:
                continue
            assert s not in resp.text and quote(s) not in resp.text, \
                f"{resp.request.method} {resp.request.url} leaked {s!r} of " \
                f"{cast.name}: {resp.status_code} {resp.text[:1500]}"


def assert_refused(resp, status, *casts):
    assert_error(resp, status)
    assert_no_data(resp, *casts)


def _routes(pred=lambda r: True, exclude=()):
    return [pytest.param(r, id=r.id) for r in ROUTES if pred(r) and r.id not in exclude]


TENANT_HOME = lambda r: r.home == "tenant"  # noqa: E731


# --- the route table is the C++ route table -----------------------------------------------------

def test_every_management_route_is_in_the_attack_table():
    in_sources = source_routes(lambda p: p.startswith("/api/v2"))
    assert len(in_sources) >= 80, f"the r.add parser found only {sorted(in_sources)}"
    in_table = {(r.method, r.path) for r in ROUTES}
    assert len(in_table) == len(ROUTES), "duplicate rows in ROUTES"
    assert sorted(in_sources - in_table) == [], \
        "Management API routes without cross-tenant attack cases: add them to ROUTES"
    assert sorted(in_table - in_sources) == [], "ROUTES names routes the server no longer has"


# --- the management access rules, allowed and refused -------------------------------------------

def users_of(resp):
    return {u["user_id"] for u in ok(resp, 200, "list users")}


def test_rule_a_allows_a_token_issued_by_the_tenant_itself(server, arena):
    A = arena.A
    assert claims(A.token)["iss"] == server.issuer(A.tenant)
    assert A.user_id in users_of(server.api("GET", "/users", tenant=A.tenant, token=A.token))
    r = server.api("GET", f"/roles/{A.role_id}", tenant=A.tenant, token=A.token)
    assert ok(r)["id"] == A.role_id


def test_rule_a_refuses_the_token_of_another_tenant(server, arena):
    A, B = arena.A, arena.B
    assert_refused(server.api("GET", "/users", tenant=B.tenant, token=A.token), 403, B)
    assert_refused(server.api("GET", "/users", token=A.token), 403, B, arena.cp)


def test_rule_a_still_needs_the_routes_scope(server, arena):
    """A user token of A for the management audience holds no permissions without roles."""
    A = arena.A
    email = f"{unique_id('plain')}@example.com"
    create_user(server, A.tenant, email=email)
    token = Browser(server, A.spa_client_id, A.tenant, A.callback).login(
        email, audience=MGMT_AUDIENCE)["access_token"]
    assert claims(token)["permissions"] == []
    body = assert_error(server.api("GET", "/users", tenant=A.tenant, token=token), 403)
    assert "scope" in body["message"].lower(), body


def test_rule_b_allows_an_org_token_on_its_tenant(server, arena):
    A = arena.A
    c = claims(arena.org_token)
    assert c["iss"] == server.issuer() and c["org_name"] == A.tenant and "read:users" in \
        c["permissions"]
    assert A.user_id in users_of(server.api("GET", "/users", tenant=A.tenant,
                                            token=arena.org_token))


def test_rule_b_refuses_an_org_token_on_another_tenant_and_on_the_control_plane(server, arena):
    assert_refused(server.api("GET", "/users", tenant=arena.B.tenant, token=arena.org_token),
                   403, arena.B)
    assert_refused(server.api("GET", "/users", token=arena.org_token), 403, arena.cp)


def test_rule_b_org_member_without_a_role_gets_no_permissions(server, arena):
    """Membership alone names the tenant but grants no management scope."""
    A = arena.A
    bob = create_user(server, None)
    org = organization_by_name(server, A.tenant)
    assoc(server.api("POST", f"/organizations/{org['id']}/members",
                     json={"members": [bob["user_id"]]}), "add member")
    browser = Browser(server, arena.portal)
    browser.login(bob["email"])
    token = browser.org_token(A.tenant)
    assert claims(token)["org_id"] == org["id"] and claims(token)["permissions"] == []
    assert_refused(server.api("GET", "/users", tenant=A.tenant, token=token), 403, A)


def test_rule_b_is_refused_to_a_non_member(server, arena):
    """A control-plane user who is no member of A's organization gets no org token for it."""
    carol = create_user(server, None)
    browser = Browser(server, arena.portal)
    browser.login(carol["email"])
    r, _, state = browser.authorize(audience=MGMT_AUDIENCE, organization=arena.A.tenant)
    assert r.status_code == 302, r.text
    q = redirect_params(r.headers["Location"])
    assert q.get("error") == "access_denied" and q.get("state") == state and "code" not in q


def test_rule_c_allows_platform_staff_and_audits_every_call(server, arena):
    A, B = arena.A, arena.B
    token = staff_token(server, ("read:users",))
    staff = claims(token)["azp"]
    assert A.user_id in users_of(server.api("GET", "/users", tenant=A.tenant, token=token))
    r = server.api("GET", f"/users/{quote(A.user_id)}", tenant=A.tenant, token=token)
    assert ok(r)["email"] == A.email
    logs = ok(server.api("GET", "/logs", tenant=A.tenant, token=A.token,
                         params={"type": "sapi", "per_page": 100}))
    mine = [e for e in logs if e.get("client_id") == staff]
    paths = sorted(e["details"]["path"] for e in mine)
    assert paths == sorted([f"/t/{A.tenant}/api/v2/users",
                            f"/t/{A.tenant}/api/v2/users/{quote(A.user_id)}"]), mine
    assert all(e["details"]["issuing_tenant"] == CONTROL_PLANE and e["details"]["method"] == "GET"
               for e in mine), mine
    # B's audit log does not hear of calls on A.
    logs_b = ok(server.api("GET", "/logs", tenant=B.tenant, token=B.token,
                           params={"per_page": 100}))
    assert not [e for e in logs_b if e.get("client_id") == staff], logs_b


def test_rule_c_refuses_a_control_plane_token_without_admin_organizations(server, arena):
    cid, secret = create_m2m_client(server, None, ("read:users",))
    token = client_token(server, cid, secret)
    assert ADMIN_ORGANIZATIONS not in claims(token)["scope"].split()
    assert_refused(server.api("GET", "/users", tenant=arena.A.tenant, token=token), 403, arena.A)
    # On its own tenant the same token is rule (a).
    assert server.api("GET", "/users", token=token).status_code == 200


def test_rule_c_refuses_the_amy_user_token_without_admin_organizations(server, arena):
    assert_refused(server.api("GET", "/users", tenant=arena.A.tenant, token=arena.amy_token),
                   403, arena.A)


def test_rule_c_staff_still_needs_the_routes_scope(server, arena):
    token = staff_token(server, ("read:users",))
    body = assert_error(server.api("GET", "/clients", tenant=arena.A.tenant, token=token), 403)
    assert arena.A.client_id not in json.dumps(body)


def test_staff_permissions_inside_an_org_token_are_rule_b_only(server, arena):
    """A control-plane user holding admin:organizations is staff without an org claim; with an
    org claim for A the token acts on A only."""
    A, B = arena.A, arena.B
    sam = create_user(server, None)
    assoc(server.api("POST", f"/users/{quote(sam['user_id'])}/permissions", json={"permissions": [
        {"resource_server_identifier": MGMT_AUDIENCE, "permission_name": p}
        for p in ("read:users", ADMIN_ORGANIZATIONS)]}), "grant sam")
    org = organization_by_name(server, A.tenant)
    assoc(server.api("POST", f"/organizations/{org['id']}/members",
                     json={"members": [sam["user_id"]]}), "add sam")
    browser = Browser(server, arena.portal)
    staff = browser.login(sam["email"], audience=MGMT_AUDIENCE)["access_token"]
    assert ADMIN_ORGANIZATIONS in claims(staff)["permissions"]
    assert B.user_id in users_of(server.api("GET", "/users", tenant=B.tenant, token=staff))
    org_token = browser.org_token(A.tenant)
    assert ADMIN_ORGANIZATIONS in claims(org_token)["permissions"]
    assert claims(org_token)["org_name"] == A.tenant
    assert A.user_id in users_of(server.api("GET", "/users", tenant=A.tenant, token=org_token))
    assert_refused(server.api("GET", "/users", tenant=B.tenant, token=org_token), 403, B)
    assert_refused(server.api("GET", "/users", token=org_token), 403, arena.cp)


@pytest.mark.parametrize("org_name", ["B", CONTROL_PLANE])
def test_a_child_tenants_own_org_claim_names_no_other_tenant(server, arena, org_name):
    """Tenant A may have organizations of its own; one named like B (or like the control
    plane) puts org_name=B into A's tokens, which still act on A only (rule b is for
    control-plane tokens)."""
    A, B = arena.A, arena.B
    name = B.tenant if org_name == "B" else CONTROL_PLANE
    r = server.api("POST", "/organizations", tenant=A.tenant, json={"name": name})
    org_id = ok(r, 201, "A's organization")["id"]
    eve = create_user(server, A.tenant)
    assoc(server.api("POST", f"/organizations/{org_id}/members", tenant=A.tenant,
                     json={"members": [eve["user_id"]]}), "member")
    assoc(server.api("POST", f"/users/{quote(eve['user_id'])}/permissions", tenant=A.tenant,
                     json={"permissions": [{"resource_server_identifier": MGMT_AUDIENCE,
                                            "permission_name": p}
                                           for p in ("read:users", "read:tenants",
                                                     ADMIN_ORGANIZATIONS)]}), "perms")
    token = Browser(server, A.spa_client_id, A.tenant, A.callback).login(
        eve["email"], audience=MGMT_AUDIENCE, organization=name)["access_token"]
    c = claims(token)
    assert c["org_name"] == name and c["iss"] == server.issuer(A.tenant), c
    assert ADMIN_ORGANIZATIONS in c["permissions"]
    assert A.user_id in users_of(server.api("GET", "/users", tenant=A.tenant, token=token))
    assert_refused(server.api("GET", "/users", tenant=B.tenant, token=token), 403, A, B)
    assert_refused(server.api("GET", "/users", token=token), 403, A, B, arena.cp)
    assert_refused(server.api("GET", "/tenants", token=token), 403, A, B)
    assert_refused(server.api("GET", f"/tenants/{B.tenant}", token=token), 403, A, B)


def test_a_token_for_another_audience_is_401(server, arena):
    A = arena.A
    r = server.token_request(A.tenant, grant_type="password", client_id=A.client_id,
                             client_secret=A.client_secret, username=A.email, password=PASSWORD,
                             audience=A.rs_identifier, scope="openid")
    token = ok(r, 200, "password grant")["access_token"]
    assert claims(token)["aud"] != MGMT_AUDIENCE
    assert_error(server.api("GET", "/users", tenant=A.tenant, token=token), 401)


def _resigned(token, **changes):
    """The token with changed claims and its original signature."""
    head, _, sig = token.split(".")
    c = claims(token)
    c.update(changes)
    return ".".join([head, b64url_encode(json.dumps(c).encode()), sig])


@pytest.mark.parametrize("forge", ["iss-of-B", "iss-of-control-plane", "tenant_id-of-B",
                                   "org_name-of-B", "alg-none-staff"])
def test_forged_tokens_are_401(server, arena, forge):
    A, B = arena.A, arena.B
    if forge == "iss-of-B":
        token = _resigned(A.token, iss=server.issuer(B.tenant), tenant_id=B.tenant)
    elif forge == "iss-of-control-plane":
        token = _resigned(A.token, iss=server.issuer(), tenant_id=CONTROL_PLANE,
                          scope=claims(A.token)["scope"] + " " + ADMIN_ORGANIZATIONS)
    elif forge == "tenant_id-of-B":
        token = _resigned(A.token, tenant_id=B.tenant)
    elif forge == "org_name-of-B":
        token = _resigned(arena.org_token, org_name=B.tenant)
    else:
        token = encode_unsigned({"alg": "none", "typ": "JWT"}, {
            "iss": server.issuer(), "sub": "x@clients", "aud": MGMT_AUDIENCE, "azp": "x",
            "scope": "read:users " + ADMIN_ORGANIZATIONS, "tenant_id": CONTROL_PLANE,
            "iat": claims(A.token)["iat"], "exp": claims(A.token)["exp"]})
    assert_error(server.api("GET", "/users", tenant=B.tenant, token=token), 401)
    assert_error(server.api("GET", "/users", tenant=A.tenant, token=token), 401)


# --- the attack matrix over every Management API route -------------------------------------------

@pytest.mark.parametrize("route", _routes())
def test_A_token_at_B(server, arena, route):
    """A's own management token (rule a for A) on B's URL with B's ids."""
    A, B = arena.A, arena.B
    url_tenant = B.tenant if route.home == "tenant" else None
    r = attack(server, route, token=A.token, url_tenant=url_tenant, ids=B)
    assert_refused(r, expected_refusal(route, url_tenant, None), A, B)


@pytest.mark.parametrize("route", _routes(lambda r: r.has_params and r.home == "tenant"))
def test_A_ids_in_B_url(server, arena, route):
    """B's own token on B's URL naming A's entities: they do not exist there."""
    A, B = arena.A, arena.B
    r = attack(server, route, token=B.token, url_tenant=B.tenant, ids=A)
    assert_refused(r, 404, A, B)


@pytest.mark.parametrize("route", _routes(lambda r: r.body_refs))
def test_A_ids_in_B_body(server, arena, route):
    """B's own token and B's entities in the URL, A's entities in the body."""
    A, B = arena.A, arena.B
    r = attack(server, route, token=B.token, url_tenant=B.tenant, ids=B, body_cast=A)
    assert_refused(r, 404, A)


@pytest.mark.parametrize("route", _routes(lambda r: r.method == "GET" and not r.has_params
                                           and r.home == "tenant"))
def test_B_lists_show_nothing_of_A(server, arena, route):
    """B's own lists (filtered by A's email, client or user id where the route filters) hold
    none of A's entities."""
    A, B = arena.A, arena.B
    r = attack(server, route, token=B.token, url_tenant=B.tenant, ids=B, query_cast=A)
    if route.path == "/api/v2/emails/provider":
        assert r.status_code in (200, 404), r.text
    else:
        assert r.status_code == 200, r.text
    assert_no_data(r, A)
    if route.query:
        body = r.json()
        items = body.get("blocked_for", body) if isinstance(body, dict) else body
        assert items == [], f"{route.id} filtered by A's ids at B: {r.text[:1000]}"


@pytest.mark.parametrize("route", _routes())
def test_A_token_with_tenant_header_A_on_B_path(server, arena, route):
    """The path decides: `tenant-id: A` does not turn B's URL into A's."""
    A, B = arena.A, arena.B
    headers = {"tenant-id": A.tenant}
    r = attack(server, route, token=A.token, url_tenant=B.tenant, ids=B, headers=headers)
    assert_refused(r, expected_refusal(route, B.tenant, headers), A, B)


@pytest.mark.parametrize("header", ["tenant-id", "x-tenant-id"])
@pytest.mark.parametrize("route", _routes())
def test_A_token_with_tenant_header_B_on_control_plane_host(server, arena, route, header):
    """The header alone on the control-plane host reaches B, and B refuses A's token."""
    A, B = arena.A, arena.B
    headers = {header: B.tenant}
    r = attack(server, route, token=A.token, url_tenant=None, ids=B, headers=headers)
    assert_refused(r, expected_refusal(route, None, headers), A, B)


# GET /api/v2/tenants is the one control-plane route an org token may call (it lists A only;
# test_A_org_token_lists_only_A).
_ORG_TOKEN_EXCLUDED = ("GET /api/v2/tenants",)


@pytest.mark.parametrize("route", _routes(exclude=_ORG_TOKEN_EXCLUDED))
def test_A_org_token_at_B(server, arena, route):
    """The control-plane org token for A (rule b) on B's URL with B's ids."""
    A, B = arena.A, arena.B
    url_tenant = B.tenant if route.home == "tenant" else None
    r = attack(server, route, token=arena.org_token, url_tenant=url_tenant, ids=B)
    assert_refused(r, expected_refusal(route, url_tenant, None), A, B)


@pytest.mark.parametrize("route", _routes())
def test_A_org_token_with_tenant_header_B_on_control_plane_host(server, arena, route):
    A, B = arena.A, arena.B
    headers = {"tenant-id": B.tenant}
    r = attack(server, route, token=arena.org_token, url_tenant=None, ids=B, headers=headers)
    assert_refused(r, expected_refusal(route, None, headers), A, B)


@pytest.mark.parametrize("route", _routes(exclude=_ORG_TOKEN_EXCLUDED))
def test_A_org_token_on_the_control_planes_own_api(server, arena, route):
    """DESIGN.md "Exact rules": a control-plane token with an org claim acts only on its
    tenant, not on the control plane's own management API (except GET /api/v2/tenants)."""
    r = attack(server, route, token=arena.org_token, url_tenant=None, ids=arena.cp)
    assert_refused(r, 403, arena.B)


def test_A_org_token_lists_only_A(server, arena):
    for token in (arena.org_token, arena.amy_token):
        r = server.api("GET", "/tenants", token=token)
        assert tenant_ids_listed(r) == [arena.A.tenant]
        assert_no_data(r, arena.B)


def test_A_token_cannot_list_tenants(server, arena):
    assert_refused(server.api("GET", "/tenants", token=arena.A.token), 403, arena.B)


# --- OIDC: A's clients, tokens, state, tickets and cookies at B ---------------------------------

@pytest.fixture(scope="module")
def oidc(server, new_tenant):
    """A fresh pair (so their logs are not the management matrix's) with A's tokens."""
    A, B = Cast(server, new_tenant("OIDC A")), Cast(server, new_tenant("OIDC B"))
    return SimpleNamespace(A=A, B=B)


def password_tokens(server, cast, scope="openid profile email offline_access"):
    r = server.token_request(cast.tenant, grant_type="password", client_id=cast.client_id,
                             client_secret=cast.client_secret, username=cast.email,
                             password=PASSWORD, scope=scope)
    return ok(r, 200, f"password grant at {cast.tenant}")


def browser_of(server, cast):
    return Browser(server, cast.spa_client_id, cast.tenant, cast.callback)


def oidc_refused(resp, *casts, statuses=(400, 401, 403, 404)):
    assert resp.status_code in statuses, f"{resp.status_code} {resp.text[:1000]}"
    loc = resp.headers.get("Location", "")
    assert "code=" not in loc, f"a code was issued: {loc}"
    assert not [c for c in resp.cookies if c.name.startswith("ks_session") and c.value], \
        f"a session was started: {resp.headers.get('Set-Cookie')}"
    sent = urllib.parse.unquote(resp.request.url) + " " + urllib.parse.unquote(
        resp.request.body if isinstance(resp.request.body, str) else
        (resp.request.body or b"").decode("utf-8", "replace"))
    resp.sent = sent + " " + json.dumps(dict(resp.request.headers))
    assert_no_data(resp, *casts)


def test_token_endpoint_refuses_A_client_credentials_at_B(server, oidc):
    A, B = oidc.A, oidc.B
    for audience in (MGMT_AUDIENCE, A.rs_identifier, B.rs_identifier):
        r = server.client_credentials(A.client_id, A.client_secret, audience, B.tenant)
        assert_oauth_error(r, 401, "invalid_client")
        oidc_refused(r, A, B)
    r = server.token_request(B.tenant, auth=(A.client_id, A.client_secret),
                             grant_type="client_credentials", audience=MGMT_AUDIENCE)
    assert_oauth_error(r, 401, "invalid_client")


def test_token_endpoint_refuses_A_password_grant_at_B(server, oidc):
    A, B = oidc.A, oidc.B
    r = server.token_request(B.tenant, grant_type="password", client_id=A.client_id,
                             client_secret=A.client_secret, username=A.email, password=PASSWORD)
    assert_oauth_error(r, 401, "invalid_client")
    oidc_refused(r, A, B)
    r = server.token_request(B.tenant, grant_type="password", client_id=B.client_id,
                             client_secret=B.client_secret, username=A.email, password=PASSWORD)
    assert_oauth_error(r, 403, "invalid_grant")
    oidc_refused(r, A, B)


def test_A_authorization_code_is_useless_at_B_and_still_good_at_A(server, oidc):
    A, B = oidc.A, oidc.B
    browser = browser_of(server, A)
    page, verifier, state = browser.open_page()
    code = browser.code_from(browser.submit(page, A.email, PASSWORD), state)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": A.callback,
            "code_verifier": verifier}
    r = server.token_request(B.tenant, client_id=A.spa_client_id, **form)
    assert_oauth_error(r, 401, "invalid_client")
    oidc_refused(r, A, B)
    r = server.token_request(B.tenant, client_id=B.client_id, client_secret=B.client_secret,
                             **{**form, "redirect_uri": B.callback})
    assert_oauth_error(r, 400, "invalid_grant")
    oidc_refused(r, A, B)
    tokens = browser.exchange(code, verifier)
    assert claims(tokens["access_token"])["sub"] == A.user_id


def test_A_refresh_token_is_useless_at_B_and_still_good_at_A(server, oidc):
    A, B = oidc.A, oidc.B
    rt = password_tokens(server, A)["refresh_token"]
    r = server.token_request(B.tenant, grant_type="refresh_token", client_id=B.client_id,
                             client_secret=B.client_secret, refresh_token=rt)
    assert_oauth_error(r, 400, "invalid_grant")
    oidc_refused(r, A, B)
    r = server.token_request(B.tenant, grant_type="refresh_token", client_id=A.client_id,
                             client_secret=A.client_secret, refresh_token=rt)
    assert_oauth_error(r, 401, "invalid_client")
    r = server.token_request(A.tenant, grant_type="refresh_token", client_id=A.client_id,
                             client_secret=A.client_secret, refresh_token=rt)
    assert ok(r, 200, "A's refresh at A")["access_token"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_authorize_refuses_A_client_at_B(server, oidc, method):
    A, B = oidc.A, oidc.B
    for prompt in (None, "none"):
        params = {"response_type": "code", "client_id": A.spa_client_id,
                  "redirect_uri": A.callback, "scope": "openid", "state": "s1",
                  "code_challenge": pkce()[1], "code_challenge_method": "S256"}
        if prompt:
            params["prompt"] = prompt
        kw = {"params": params} if method == "GET" else {"data": params}
        r = server.req(method, "/authorize", tenant=B.tenant, allow_redirects=False, **kw)
        oidc_refused(r, A, B, statuses=(400,))
        assert "Location" not in r.headers, r.headers


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_refuses_A_access_token_at_B(server, oidc, method):
    A, B = oidc.A, oidc.B
    at = password_tokens(server, A)["access_token"]
    r = server.req(method, "/userinfo", tenant=B.tenant, token=at)
    assert_oauth_error(r, 401, "invalid_token")
    oidc_refused(r, A, B)
    assert server.req(method, "/userinfo", tenant=A.tenant, token=at).json()["sub"] == A.user_id


def test_introspect_at_B_knows_nothing_of_A_tokens(server, oidc):
    A, B = oidc.A, oidc.B
    tokens = password_tokens(server, A)
    for token in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"]):
        r = server.req("POST", "/oauth/introspect", tenant=B.tenant, data={"token": token},
                       auth=(B.client_id, B.client_secret))
        assert ok(r) == {"active": False}
        r = server.req("POST", "/oauth/introspect", tenant=B.tenant, data={"token": token},
                       auth=(A.client_id, A.client_secret))
        assert_oauth_error(r, 401, "invalid_client")
        oidc_refused(r, A, B)
    r = server.req("POST", "/oauth/introspect", tenant=A.tenant,
                   data={"token": tokens["access_token"]}, auth=(A.client_id, A.client_secret))
    assert ok(r)["active"] is True


def test_revoke_at_B_does_not_touch_A_tokens(server, oidc):
    A, B = oidc.A, oidc.B
    rt = password_tokens(server, A)["refresh_token"]
    r = server.req("POST", "/oauth/revoke", tenant=B.tenant, data={
        "token": rt, "client_id": A.client_id, "client_secret": A.client_secret})
    assert_oauth_error(r, 401, "invalid_client")
    oidc_refused(r, A, B)
    # RFC 7009: an unknown token is answered like a success, and nothing happens.
    r = server.req("POST", "/oauth/revoke", tenant=B.tenant, data={
        "token": rt, "client_id": B.client_id, "client_secret": B.client_secret})
    assert r.status_code == 200 and not r.content, r.text
    r = server.req("POST", "/oauth/introspect", tenant=A.tenant, data={"token": rt},
                   auth=(A.client_id, A.client_secret))
    assert ok(r)["active"] is True


@pytest.mark.parametrize("page_path", ["/u/login", "/u/signup"])
def test_hosted_pages_refuse_A_login_state_at_B(server, oidc, page_path):
    A, B = oidc.A, oidc.B
    browser = browser_of(server, A)
    page, _, _ = browser.open_page(screen_hint="signup" if "signup" in page_path else None)
    state, csrf = hidden(page.text, "state"), hidden(page.text, "_csrf")
    r = browser.http.get(server.url(page_path, B.tenant), params={"state": state})
    oidc_refused(r, A, B, statuses=(400,))
    email = A.email if page_path == "/u/login" else f"{unique_id('new')}@example.com"
    r = browser.http.post(server.url(page_path, B.tenant), allow_redirects=False, data={
        "state": state, "_csrf": csrf, "username": email, "password": PASSWORD})
    oidc_refused(r, A, B, statuses=(400,))
    assert ok(server.api("GET", "/users-by-email", tenant=B.tenant,
                         params={"email": email})) == []
    # The state still works where it belongs.
    r = browser.http.get(server.url(page_path, A.tenant), params={"state": state})
    assert r.status_code == 200, r.text


def test_A_session_cookie_is_no_session_at_B(server, oidc):
    A, B = oidc.A, oidc.B
    browser = browser_of(server, A)
    page, _, state = browser.open_page()
    browser.code_from(browser.submit(page, A.email, PASSWORD), state)
    name, value = browser.session_cookie()
    assert name == f"ks_session_{A.tenant}"
    params = {"response_type": "code", "client_id": B.spa_client_id, "redirect_uri": B.callback,
              "scope": "openid", "state": "s2", "prompt": "none",
              "code_challenge": pkce()[1], "code_challenge_method": "S256"}
    for cookie in (f"ks_session_{B.tenant}={value}", f"{name}={value}",
                   f"ks_session_{B.tenant}={value}; {name}={value}"):
        r = requests.get(server.url("/authorize", B.tenant), params=params,
                         headers={"Cookie": cookie}, allow_redirects=False)
        assert r.status_code == 302, r.text
        q = redirect_params(r.headers["Location"])
        assert q.get("error") == "login_required" and "code" not in q, r.headers["Location"]
        oidc_refused(r, A, statuses=(302,))
    # At A the same cookie is a session.
    r, _, state = browser.authorize(prompt="none")
    assert "code" in redirect_params(r.headers["Location"])


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_at_B_refuses_A_client_and_id_token(server, oidc, method):
    A, B = oidc.A, oidc.B
    id_token = password_tokens(server, A)["id_token"]
    if method == "GET":
        r = server.req("GET", "/v2/logout", tenant=B.tenant, allow_redirects=False, params={
            "client_id": A.client_id, "returnTo": A.logout_url})
        oidc_refused(r, A, B, statuses=(400,))
        assert "Location" not in r.headers
    args = {"id_token_hint": id_token, "post_logout_redirect_uri": A.logout_url, "state": "z"}
    kw = {"params": args} if method == "GET" else {"data": args}
    r = server.req(method, "/oidc/logout", tenant=B.tenant, allow_redirects=False, **kw)
    oidc_refused(r, A, B, statuses=(400,))
    assert "Location" not in r.headers


def test_reset_password_pages_refuse_A_login_state_at_B(server, oidc):
    A, B = oidc.A, oidc.B
    browser = browser_of(server, A)
    page, _, _ = browser.open_page()
    state, csrf = hidden(page.text, "state"), hidden(page.text, "_csrf")
    r = browser.http.get(server.url("/u/reset-password", B.tenant), params={"state": state})
    oidc_refused(r, A, B, statuses=(400,))
    r = browser.http.post(server.url("/u/reset-password", B.tenant), allow_redirects=False,
                          data={"state": state, "_csrf": csrf, "email": A.email})
    oidc_refused(r, A, B, statuses=(400,))


def _ticket(server, cast, kind):
    r = server.api("POST", f"/tickets/{kind}", tenant=cast.tenant,
                   json={"user_id": cast.user_id})
    url = ok(r, 201, f"{kind} ticket")["ticket"]
    return redirect_params(url)["ticket"]


def test_password_ticket_of_A_is_useless_at_B(server, oidc):
    A, B = oidc.A, oidc.B
    ticket = _ticket(server, A, "password-change")
    r = server.req("GET", "/u/reset-password/confirm", tenant=B.tenant,
                   params={"ticket": ticket})
    oidc_refused(r, A, B, statuses=(400,))
    r = server.req("POST", "/u/reset-password/confirm", tenant=B.tenant, allow_redirects=False,
                   data={"ticket": ticket, "_csrf": "x", "password": "An0ther-Strong-pass!",
                         "password_confirm": "An0ther-Strong-pass!"})
    oidc_refused(r, A, B, statuses=(400, 403, 404))
    r = server.req("GET", "/u/reset-password/confirm", tenant=A.tenant, params={"ticket": ticket})
    assert r.status_code == 200, r.text
    password_tokens(server, A)  # A's password is unchanged


def test_verification_ticket_of_A_is_useless_at_B(server, oidc):
    A, B = oidc.A, oidc.B
    ticket = _ticket(server, A, "email-verification")
    r = server.req("GET", "/u/email-verification", tenant=B.tenant, params={"ticket": ticket},
                   allow_redirects=False)
    oidc_refused(r, A, B, statuses=(400, 404))
    user = ok(server.api("GET", f"/users/{quote(A.user_id)}", tenant=A.tenant))
    assert user["email_verified"] is False


def test_federated_state_of_A_is_useless_at_B(server, oidc):
    A, B = oidc.A, oidc.B
    browser = browser_of(server, A)
    page, _, _ = browser.open_page()
    login_state = hidden(page.text, "state")
    r = browser.http.get(server.url("/login/federated", B.tenant), allow_redirects=False,
                         params={"state": login_state, "connection": A.connection_name})
    oidc_refused(r, A, B, statuses=(400,))
    # Started at A, the upstream redirect carries the federated state and a binding cookie.
    r = browser.http.get(server.url("/login/federated", A.tenant), allow_redirects=False,
                         params={"state": login_state, "connection": A.connection_name})
    assert r.status_code == 302 and "accounts.google.com" in r.headers["Location"], r.text
    fed_state = redirect_params(r.headers["Location"])["state"]
    binding = [f"{c.name}={c.value}" for c in browser.http.cookies if c.name.startswith("ks_fed_")]
    assert binding, browser.http.cookies
    for method in ("GET", "POST"):
        args = {"state": fed_state, "code": "upstream-code"}
        kw = {"params": args} if method == "GET" else {"data": args}
        r = requests.request(method, server.url("/login/callback", B.tenant),
                             headers={"Cookie": "; ".join(binding)}, allow_redirects=False, **kw)
        oidc_refused(r, A, B, statuses=(400,))


def test_discovery_and_jwks_of_B_show_nothing_of_A(server, oidc):
    A, B = oidc.A, oidc.B
    disc = server.req("GET", "/.well-known/openid-configuration", tenant=B.tenant)
    assert ok(disc)["issuer"] == server.issuer(B.tenant)
    assert A.tenant not in disc.text
    jwks_b = server.req("GET", "/.well-known/jwks.json", tenant=B.tenant)
    jwks_a = ok(server.req("GET", "/.well-known/jwks.json", tenant=A.tenant))
    kids_a = {k["kid"] for k in jwks_a["keys"]}
    kids_b = {k["kid"] for k in ok(jwks_b)["keys"]}
    assert kids_a and kids_b and not kids_a & kids_b
    assert_no_data(jwks_b, A)


@pytest.mark.parametrize("path", ["/oauth/token", "/userinfo", "/oauth/revoke"])
def test_cors_at_B_ignores_A_origins(server, oidc, path):
    A, B = oidc.A, oidc.B
    pre = server.req("OPTIONS", path, tenant=B.tenant, headers={
        "Origin": A.origin, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204 and "Access-Control-Allow-Origin" not in pre.headers, \
        pre.headers
    own = server.req("OPTIONS", path, tenant=A.tenant, headers={
        "Origin": A.origin, "Access-Control-Request-Method": "POST"})
    assert own.headers.get("Access-Control-Allow-Origin") == A.origin
    if path == "/userinfo":
        at = password_tokens(server, A)["access_token"]
        r = server.req("GET", path, tenant=B.tenant, token=at, headers={"Origin": A.origin})
        assert r.status_code == 401 and "Access-Control-Allow-Origin" not in r.headers


# Every OIDC route and the tests that attack it with A's material at B.
OIDC_ROUTE_TESTS = {
    ("GET", "/.well-known/openid-configuration"): "test_discovery_and_jwks_of_B_show_nothing_of_A",
    ("GET", "/.well-known/jwks.json"): "test_discovery_and_jwks_of_B_show_nothing_of_A",
    ("GET", "/authorize"): "test_authorize_refuses_A_client_at_B",
    ("POST", "/authorize"): "test_authorize_refuses_A_client_at_B",
    ("POST", "/oauth/token"): "test_token_endpoint_refuses_A_client_credentials_at_B",
    ("OPTIONS", "/oauth/token"): "test_cors_at_B_ignores_A_origins",
    ("GET", "/userinfo"): "test_userinfo_refuses_A_access_token_at_B",
    ("POST", "/userinfo"): "test_userinfo_refuses_A_access_token_at_B",
    ("OPTIONS", "/userinfo"): "test_cors_at_B_ignores_A_origins",
    ("POST", "/oauth/revoke"): "test_revoke_at_B_does_not_touch_A_tokens",
    ("OPTIONS", "/oauth/revoke"): "test_cors_at_B_ignores_A_origins",
    ("POST", "/oauth/introspect"): "test_introspect_at_B_knows_nothing_of_A_tokens",
    ("GET", "/v2/logout"): "test_logout_at_B_refuses_A_client_and_id_token",
    ("GET", "/oidc/logout"): "test_logout_at_B_refuses_A_client_and_id_token",
    ("POST", "/oidc/logout"): "test_logout_at_B_refuses_A_client_and_id_token",
    ("GET", "/u/login"): "test_hosted_pages_refuse_A_login_state_at_B",
    ("POST", "/u/login"): "test_hosted_pages_refuse_A_login_state_at_B",
    ("GET", "/u/signup"): "test_hosted_pages_refuse_A_login_state_at_B",
    ("POST", "/u/signup"): "test_hosted_pages_refuse_A_login_state_at_B",
    ("GET", "/u/reset-password"): "test_reset_password_pages_refuse_A_login_state_at_B",
    ("POST", "/u/reset-password"): "test_reset_password_pages_refuse_A_login_state_at_B",
    ("GET", "/u/reset-password/confirm"): "test_password_ticket_of_A_is_useless_at_B",
    ("POST", "/u/reset-password/confirm"): "test_password_ticket_of_A_is_useless_at_B",
    ("GET", "/u/email-verification"): "test_verification_ticket_of_A_is_useless_at_B",
    ("GET", "/login/federated"): "test_federated_state_of_A_is_useless_at_B",
    ("GET", "/login/callback"): "test_federated_state_of_A_is_useless_at_B",
    ("POST", "/login/callback"): "test_federated_state_of_A_is_useless_at_B",
}


def test_every_oidc_route_is_attacked():
    in_sources = source_routes(lambda p: not p.startswith("/api/v2"))
    assert len(in_sources) >= 20, f"the r.add parser found only {sorted(in_sources)}"
    assert sorted(in_sources - set(OIDC_ROUTE_TESTS)) == [], \
        "OIDC routes without a cross-tenant test: add one and list it in OIDC_ROUTE_TESTS"
    assert sorted(set(OIDC_ROUTE_TESTS) - in_sources) == [], \
        "OIDC_ROUTE_TESTS names routes the server no longer has"
    missing = sorted({t for t in OIDC_ROUTE_TESTS.values() if not callable(globals().get(t))})
    assert missing == [], f"OIDC_ROUTE_TESTS names tests that do not exist: {missing}"
