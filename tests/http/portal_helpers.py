"""Helpers for multi-tenant scenarios over real HTTP (test_portal.py, test_cross_tenant.py).

- Browser: a user agent with its own cookie jar that drives /authorize, the hosted login and
  signup pages (CSRF field included) and the code exchange with PKCE S256, for one client of one
  tenant; org_token() is the portal's "organization=…&audience=urn:keystead:management" login.
- Management tokens by kind: issued by a tenant itself (rule a, the tenant's provisioned
  "Management Client"), platform staff (a control-plane M2M client with admin:organizations and
  no org claim, rule c), and any control-plane M2M client with chosen scopes.
- claims(): a JWT's payload without verification (jwtutil.decode does the work).
"""
import base64
import hashlib
import re
import secrets
import urllib.parse

from jwtutil import decode
from kshttp import (DEFAULT_CONNECTION, MGMT_AUDIENCE, TimeoutSession, quote, unique_id)

PASSWORD = "Correct-Horse-9-battery"
PORTAL_CALLBACK = "https://portal.example/cb"
PORTAL_ORIGIN = "https://portal.example"

# Every management scope a route can require (core/mgmt/common.cpp management_scopes()).
SCOPE_NOUNS = ("users", "clients", "client_grants", "connections", "resource_servers", "roles",
               "organizations", "tenants", "logs", "hooks", "signing_keys", "email_provider",
               "branding", "tenant_settings", "client_keys", "organization_members",
               "organization_member_roles", "role_members", "user_tickets")
ALL_MGMT_SCOPES = tuple(f"{verb}:{noun}" for noun in SCOPE_NOUNS
                        for verb in ("read", "create", "update", "delete"))
ADMIN_ORGANIZATIONS = "admin:organizations"


# --- small pieces -------------------------------------------------------------------------------

def pkce():
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)[:64]
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hidden(html, name):
    """The value of the hidden input `name` of a hosted page."""
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), html)
    assert m, f"no hidden input {name} in page:\n{html[:2000]}"
    return m.group(1)


def redirect_params(location):
    """Query (or fragment) parameters of a redirect Location."""
    parts = urllib.parse.urlsplit(location)
    return dict(urllib.parse.parse_qsl(parts.query or parts.fragment))


def claims(token):
    """A JWT's payload, not verified."""
    return decode(token)[1]


def ok(resp, status=200, what="request"):
    assert resp.status_code == status, \
        f"{what}: expected {status}, got {resp.status_code}: {resp.text[:2000]}"
    return resp.json() if resp.content else None


# --- entities through the Management API (bootstrap client unless a token is given) -----------

_DEFAULT = object()


def _api(server, method, path, tenant, token, **kw):
    if token is _DEFAULT:
        return server.api(method, path, tenant=tenant, **kw)
    return server.api(method, path, tenant=tenant, token=token, **kw)


def create_user(server, tenant=None, email=None, password=PASSWORD, token=_DEFAULT, **extra):
    email = email or f"{unique_id('u')}@example.com"
    body = {"email": email, "password": password, "connection": DEFAULT_CONNECTION, **extra}
    return ok(_api(server, "POST", "/users", tenant, token, json=body), 201, "create user")


def create_spa_client(server, tenant=None, name="portal", callbacks=(PORTAL_CALLBACK,),
                      origins=(PORTAL_ORIGIN,), token=_DEFAULT):
    """A public SPA client (PKCE, no secret); returns its client_id."""
    body = {"name": name, "app_type": "spa", "callbacks": list(callbacks),
            "web_origins": list(origins), "allowed_origins": list(origins),
            "allowed_logout_urls": [o + "/bye" for o in origins],
            "grant_types": ["authorization_code", "refresh_token"]}
    return ok(_api(server, "POST", "/clients", tenant, token, json=body), 201,
              "create SPA client")["client_id"]


def create_m2m_client(server, tenant=None, scopes=(), audience=MGMT_AUDIENCE, name=None):
    """A confidential client_credentials client with a grant for `audience`; (id, secret)."""
    c = ok(server.api("POST", "/clients", tenant=tenant, json={
        "name": name or unique_id("m2m"), "app_type": "non_interactive"}), 201, "create M2M")
    ok(server.api("POST", "/client-grants", tenant=tenant, json={
        "client_id": c["client_id"], "audience": audience, "scope": list(scopes)}), 201,
       "create client grant")
    return c["client_id"], c["client_secret"]


def client_token(server, client_id, secret, tenant=None, audience=MGMT_AUDIENCE):
    r = server.client_credentials(client_id, secret, audience, tenant)
    return ok(r, 200, "client_credentials")["access_token"]


def tenant_management_token(server, tenant):
    """A management token issued by `tenant` itself (rule a): the provisioned "Management
    Client" gets a fresh secret and asks for a token at the tenant's own /oauth/token."""
    clients = ok(server.api("GET", "/clients", tenant=tenant, params={"per_page": 100}))
    m2m = [c for c in clients if c["name"] == "Management Client"]
    assert len(m2m) == 1, f"{tenant}: no provisioned Management Client in {clients}"
    secret = ok(server.api("POST", f"/clients/{m2m[0]['client_id']}/rotate-secret",
                           tenant=tenant))["client_secret"]
    return client_token(server, m2m[0]["client_id"], secret, tenant)


def staff_token(server, scopes=("read:users", "read:logs")):
    """Platform staff: a control-plane M2M token with admin:organizations and no org claim."""
    cid, secret = create_m2m_client(server, None, (*scopes, ADMIN_ORGANIZATIONS),
                                    name=unique_id("support"))
    token = client_token(server, cid, secret)
    c = claims(token)
    assert ADMIN_ORGANIZATIONS in c["scope"].split() and "org_id" not in c, c
    return token


def organization_by_name(server, name, token=_DEFAULT):
    """The control-plane organization named `name` (a tenant's organization has its id)."""
    return ok(_api(server, "GET", f"/organizations/name/{quote(name)}", None, token),
              200, f"organization {name}")


def member_roles(server, org_id, user_id, token=_DEFAULT):
    return ok(_api(server, "GET", f"/organizations/{org_id}/members/{quote(user_id)}/roles",
                   None, token), 200, "member roles")


def tenant_ids_listed(resp):
    body = ok(resp, 200, "GET /api/v2/tenants")
    items = body["tenants"] if isinstance(body, dict) else body
    return sorted(t["id"] for t in items)


# --- a browser ----------------------------------------------------------------------------------

class Browser:
    """One user agent (own cookies) logging in to one client of one tenant (None: control
    plane) through the hosted pages, with PKCE S256."""

    def __init__(self, server, client_id, tenant=None, redirect_uri=PORTAL_CALLBACK):
        self.server, self.client_id, self.tenant = server, client_id, tenant
        self.redirect_uri = redirect_uri
        self.http = TimeoutSession()
        self.http.verify = False

    def url(self, path):
        return self.server.url(path, self.tenant)

    def authorize(self, scope="openid profile email", **extra):
        """GET /authorize; returns (response, verifier, state). Not followed."""
        verifier, challenge = pkce()
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": self.redirect_uri, "scope": scope,
                  "state": "st-" + secrets.token_hex(6), "nonce": "n-" + secrets.token_hex(6),
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        params.update({k: v for k, v in extra.items() if v is not None})
        r = self.http.get(self.url("/authorize"), params=params, allow_redirects=False)
        return r, verifier, params["state"]

    def open_page(self, **extra):
        """/authorize that must land on a hosted page: (page response, verifier, state)."""
        r, verifier, state = self.authorize(**extra)
        assert r.status_code == 302, f"/authorize: {r.status_code} {r.text[:1000]}"
        loc = r.headers["Location"]
        assert "/u/login?" in loc or "/u/signup?" in loc, f"not a hosted page: {loc}"
        page = self.http.get(loc)
        assert page.status_code == 200, page.text[:1000]
        return page, verifier, state

    def submit(self, page, email, password):
        """Posts a hosted login/signup form as a browser would; not followed."""
        action = re.search(r'<form method="post" action="([^"]*)"', page.text)
        assert action, page.text[:2000]
        return self.http.post(action.group(1).replace("&amp;", "&"), data={
            "state": hidden(page.text, "state"), "_csrf": hidden(page.text, "_csrf"),
            "username": email, "password": password}, allow_redirects=False)

    def code_from(self, resp, state):
        assert resp.status_code == 302, f"expected a redirect: {resp.status_code} {resp.text[:1500]}"
        loc = resp.headers["Location"]
        assert loc.startswith(self.redirect_uri), loc
        q = redirect_params(loc)
        assert q.get("state") == state, (q, state)
        assert "code" in q, f"no code in {loc}"
        return q["code"]

    def exchange(self, code, verifier):
        r = self.http.post(self.url("/oauth/token"), data={
            "grant_type": "authorization_code", "client_id": self.client_id, "code": code,
            "redirect_uri": self.redirect_uri, "code_verifier": verifier})
        return ok(r, 200, "code exchange")

    def signup(self, email, password=PASSWORD, **extra):
        """Signs up on the hosted signup page; returns the token response."""
        page, verifier, state = self.open_page(screen_hint="signup", **extra)
        assert "/u/signup" in page.url, page.url
        return self.exchange(self.code_from(self.submit(page, email, password), state), verifier)

    def login(self, email, password=PASSWORD, **extra):
        """Logs in on the hosted login page; returns the token response."""
        page, verifier, state = self.open_page(prompt="login", **extra)
        return self.exchange(self.code_from(self.submit(page, email, password), state), verifier)

    def tokens(self, **extra):
        """With a session: /authorize answers with a code at once; returns the token response."""
        r, verifier, state = self.authorize(**extra)
        return self.exchange(self.code_from(r, state), verifier)

    def management_token(self):
        """The user's own control-plane management token (no org claim)."""
        return self.tokens(audience=MGMT_AUDIENCE)["access_token"]

    def org_token(self, organization):
        """The portal's organization token: organization=…&audience=urn:keystead:management."""
        return self.tokens(audience=MGMT_AUDIENCE, organization=organization)["access_token"]

    def session_cookie(self):
        """(name, value) of the tenant's session cookie in this browser."""
        found = [(c.name, c.value) for c in self.http.cookies if c.name.startswith("ks_session")]
        assert len(found) == 1, f"session cookies: {found}"
        return found[0]
