"""The identity flows over real HTTP: /authorize, the hosted login and signup forms, the code
exchange with PKCE, refresh rotation, userinfo, revoke, introspect, logout, CORS, brute-force
blocks and signing-key rotation — on the control plane and on a path-routed child tenant."""
import secrets

import pytest
import requests

from kshttp import quote, assert_oauth_error, unique_id
from jwtutil import decode, verify_rs256
from portal_helpers import claims as jwt_claims, hidden, pkce, redirect_params as query

CALLBACK = "https://app.example/cb"
ORIGIN = "https://app.example"
PASSWORD = "Correct-Horse-9-battery"


class App:
    """A registered SPA client plus one user, in one tenant."""

    def __init__(self, server, tenant=None, **client_extra):
        self.server, self.tenant = server, tenant
        body = {"name": "spa", "app_type": "spa", "callbacks": [CALLBACK],
                "web_origins": [ORIGIN], "allowed_origins": [ORIGIN],
                "allowed_logout_urls": [ORIGIN + "/bye"],
                "grant_types": ["authorization_code", "refresh_token", "password"]}
        body.update(client_extra)
        r = server.api("POST", "/clients", tenant=tenant, json=body)
        assert r.status_code == 201, r.text
        self.client_id = r.json()["client_id"]
        self.email = f"{unique_id('u')}@example.com"
        r = server.api("POST", "/users", tenant=tenant, json={
            "email": self.email, "password": PASSWORD, "name": "Test User",
            "connection": "Username-Password-Authentication"})
        assert r.status_code == 201, r.text
        self.user_id = r.json()["user_id"]
        self.browser = requests.Session()

    def url(self, path):
        return self.server.url(path, self.tenant)

    def authorize(self, scope="openid profile email offline_access", **extra):
        verifier, challenge = pkce()
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": CALLBACK,
                  "scope": scope, "state": "s-" + secrets.token_hex(4), "nonce": "n-123",
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        params.update(extra)
        r = self.browser.get(self.url("/authorize"), params=params, allow_redirects=False)
        return r, verifier, params["state"]

    def login(self, password=PASSWORD, **extra):
        """Returns (final response, verifier, state)."""
        r, verifier, state = self.authorize(**extra)
        if r.status_code == 302 and r.headers["Location"].startswith(CALLBACK):
            return r, verifier, state
        assert r.status_code == 302, r.text
        page = self.browser.get(r.headers["Location"])
        assert page.status_code == 200, page.text
        assert "<form" in page.text and 'type="password"' in page.text
        post = self.browser.post(page.url.split("?")[0], data={
            "state": hidden(page.text, "state"), "_csrf": hidden(page.text, "_csrf"),
            "username": self.email, "password": password}, allow_redirects=False)
        return post, verifier, state

    def code(self, **extra):
        r, verifier, state = self.login(**extra)
        assert r.status_code == 302, r.text
        q = query(r.headers["Location"])
        assert q.get("state") == state
        assert "code" in q, r.headers["Location"]
        return q["code"], verifier

    def exchange(self, code, verifier):
        return requests.post(self.url("/oauth/token"), data={
            "grant_type": "authorization_code", "client_id": self.client_id, "code": code,
            "redirect_uri": CALLBACK, "code_verifier": verifier})


@pytest.fixture(params=["control_plane", "child"])
def app(request, server, new_tenant):
    tenant = None if request.param == "control_plane" else new_tenant()
    return App(server, tenant)


def test_code_flow_tokens_userinfo_and_refresh(server, app):
    code, verifier = app.code()
    r = app.exchange(code, verifier)
    assert r.status_code == 200, r.text
    tokens = r.json()
    idt = jwt_claims(tokens["id_token"])
    assert idt["iss"] == server.issuer(app.tenant)
    assert idt["sub"] == app.user_id and idt["aud"] == app.client_id and idt["nonce"] == "n-123"
    assert idt["email"] == app.email
    assert "auth_time" in idt and "at_hash" in idt
    at = jwt_claims(tokens["access_token"])
    assert at["tenant_id"] == (app.tenant or "control_plane")
    jwks = requests.get(app.url("/.well-known/jwks.json")).json()
    verify_rs256(tokens["id_token"], jwks)
    verify_rs256(tokens["access_token"], jwks)
    ui = requests.get(app.url("/userinfo"), headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert ui.status_code == 200 and ui.json()["sub"] == app.user_id, ui.text
    # Refresh rotation and reuse detection.
    rt1 = tokens["refresh_token"]
    r2 = requests.post(app.url("/oauth/token"), data={"grant_type": "refresh_token",
                                                      "client_id": app.client_id, "refresh_token": rt1})
    assert r2.status_code == 200, r2.text
    rt2 = r2.json()["refresh_token"]
    assert rt2 != rt1
    reuse = requests.post(app.url("/oauth/token"), data={"grant_type": "refresh_token",
                                                         "client_id": app.client_id, "refresh_token": rt1})
    assert_oauth_error(reuse, 400, "invalid_grant")
    dead = requests.post(app.url("/oauth/token"), data={"grant_type": "refresh_token",
                                                        "client_id": app.client_id, "refresh_token": rt2})
    assert_oauth_error(dead, 400, "invalid_grant")
    # The code was single-use.
    assert_oauth_error(app.exchange(code, verifier), 400, "invalid_grant")


def test_wrong_verifier_and_foreign_client_are_refused(server, app):
    code, _ = app.code()
    assert_oauth_error(app.exchange(code, "x" * 50), 400, "invalid_grant")
    other = App(server, app.tenant)
    code2, verifier2 = app.code()
    r = requests.post(other.url("/oauth/token"), data={
        "grant_type": "authorization_code", "client_id": other.client_id, "code": code2,
        "redirect_uri": CALLBACK, "code_verifier": verifier2})
    assert_oauth_error(r, 400, "invalid_grant")


def test_response_modes(server, app):
    app.login()  # establishes the session
    r, _, state = app.authorize(response_mode="fragment")
    assert r.status_code == 302 and "#code=" in r.headers["Location"]
    r, _, state = app.authorize(response_mode="form_post")
    assert r.status_code == 200 and f'action="{CALLBACK}"' in r.text and 'name="code"' in r.text
    r, _, state = app.authorize(response_mode="web_message", prompt="none")
    assert r.status_code == 200 and "authorization_response" in r.text
    assert "X-Frame-Options" not in r.headers  # the silent-auth iframe must be able to load it
    assert '"https://app.example"' in r.text


def test_silent_auth_without_session_is_login_required(server, app):
    r, _, state = app.authorize(prompt="none")
    assert r.status_code == 302
    q = query(r.headers["Location"])
    assert q["error"] == "login_required" and q["state"] == state


def test_unregistered_redirect_uri_never_redirects(server, app):
    r = app.browser.get(app.url("/authorize"), params={
        "response_type": "code", "client_id": app.client_id, "redirect_uri": "https://evil.example/cb",
        "code_challenge": pkce()[1], "code_challenge_method": "S256"}, allow_redirects=False)
    assert r.status_code == 400 and "Location" not in r.headers
    assert "text/html" in r.headers["Content-Type"]


def test_wrong_password_then_block_then_unblock(server, new_tenant):
    tenant = new_tenant()
    r = server.api("PATCH", f"/tenants/{tenant}", json={"settings": {"brute_force_protection": {"max_attempts": 3}}})
    assert r.status_code == 200, r.text
    app = App(server, tenant)
    for _ in range(3):
        r, _, _ = app.login(password="wrong-password-1")
        assert r.status_code == 401 and "Wrong email or password" in r.text
    r, _, _ = app.login()
    assert r.status_code == 429 and "blocked" in r.text
    blocks = server.api("GET", f"/user-blocks/{quote(app.user_id)}", tenant=tenant)
    assert blocks.status_code == 200 and len(blocks.json()["blocked_for"]) == 1, blocks.text
    assert server.api("DELETE", f"/user-blocks/{quote(app.user_id)}", tenant=tenant).status_code == 204
    r, _, _ = app.login()
    assert r.status_code == 302 and r.headers["Location"].startswith(CALLBACK)
    all_types = [e["type"] for e in server.api("GET", "/logs", tenant=tenant).json()]
    # The bootstrap client acts as platform staff: each of its calls here is audited ("sapi").
    assert "sapi" in all_types
    types = [t for t in all_types if t != "sapi"]
    assert types[0] == "s" and "limit_wu" in types and types.count("fp") == 3


def test_signup_form(server, new_tenant):
    tenant = new_tenant()
    app = App(server, tenant)
    r, _, _ = app.authorize(screen_hint="signup")
    assert "/u/signup?state=" in r.headers["Location"]
    page = app.browser.get(r.headers["Location"])
    form = {"state": hidden(page.text, "state"), "_csrf": hidden(page.text, "_csrf"),
            "username": "new.person@example.com", "password": "short"}
    bad = app.browser.post(app.url("/u/signup"), data=form, allow_redirects=False)
    assert bad.status_code == 400 and "too weak" in bad.text
    form["password"] = PASSWORD
    ok = app.browser.post(app.url("/u/signup"), data=form, allow_redirects=False)
    assert ok.status_code == 302 and "code=" in ok.headers["Location"], ok.text
    users = server.api("GET", "/users-by-email", tenant=tenant, params={"email": "new.person@example.com"})
    assert len(users.json()) == 1


def test_csrf_is_enforced(server, app):
    r, _, _ = app.authorize()
    page = app.browser.get(r.headers["Location"])
    post = app.browser.post(app.url("/u/login"), data={
        "state": hidden(page.text, "state"), "_csrf": "forged", "username": app.email,
        "password": PASSWORD}, allow_redirects=False)
    assert post.status_code == 403


def test_logout_checks_return_to_and_ends_session(server, app):
    app.login()
    bad = app.browser.get(app.url("/v2/logout"), params={"client_id": app.client_id,
                                                         "returnTo": "https://evil.example"},
                          allow_redirects=False)
    assert bad.status_code == 400
    ok = app.browser.get(app.url("/v2/logout"), params={"client_id": app.client_id,
                                                        "returnTo": ORIGIN + "/bye"}, allow_redirects=False)
    assert ok.status_code == 302 and ok.headers["Location"] == ORIGIN + "/bye"
    r, _, _ = app.authorize(prompt="none")
    assert query(r.headers["Location"])["error"] == "login_required"


def test_oidc_logout_with_id_token_hint(server, app):
    code, verifier = app.code()
    idt = app.exchange(code, verifier).json()["id_token"]
    r = app.browser.get(app.url("/oidc/logout"), params={
        "id_token_hint": idt, "post_logout_redirect_uri": ORIGIN + "/bye", "state": "abc"},
        allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == ORIGIN + "/bye?state=abc"
    tampered = idt[:-4] + ("AAAA" if not idt.endswith("AAAA") else "BBBB")
    r = app.browser.get(app.url("/oidc/logout"), params={"id_token_hint": tampered}, allow_redirects=False)
    assert r.status_code == 400


def test_cors_on_token_and_userinfo(server, app):
    pre = requests.options(app.url("/oauth/token"), headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, auth0-client"})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Auth0-Client" in pre.headers["Access-Control-Allow-Headers"]
    evil = requests.options(app.url("/oauth/token"), headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_password_grant_and_introspection(server, new_tenant):
    tenant = new_tenant()
    app = App(server, tenant, app_type="regular_web", token_endpoint_auth_method="client_secret_post")
    secret = server.api("POST", f"/clients/{app.client_id}/rotate-secret", tenant=tenant).json()["client_secret"]
    r = requests.post(app.url("/oauth/token"), data={
        "grant_type": "password", "client_id": app.client_id, "client_secret": secret,
        "username": app.email, "password": PASSWORD, "scope": "openid offline_access"})
    assert r.status_code == 200, r.text
    tokens = r.json()
    intro = requests.post(app.url("/oauth/introspect"), data={"token": tokens["access_token"]},
                          auth=(app.client_id, secret))
    assert intro.status_code == 200 and intro.json()["active"] is True, intro.text
    assert intro.json()["sub"] == app.user_id
    # Revoking the refresh token makes it inactive.
    rv = requests.post(app.url("/oauth/revoke"), data={"token": tokens["refresh_token"],
                                                       "client_id": app.client_id, "client_secret": secret})
    assert rv.status_code == 200
    intro = requests.post(app.url("/oauth/introspect"), data={"token": tokens["refresh_token"]},
                          auth=(app.client_id, secret))
    assert intro.json() == {"active": False}
    bad = requests.post(app.url("/oauth/token"), data={
        "grant_type": "password", "client_id": app.client_id, "client_secret": secret,
        "username": app.email, "password": "nope-nope-nope"})
    assert_oauth_error(bad, 403, "invalid_grant")


def test_key_rotation_keeps_old_tokens_valid(server, new_tenant):
    tenant = new_tenant()
    app = App(server, tenant)
    code, verifier = app.code()
    old = app.exchange(code, verifier).json()["access_token"]
    r = server.api("POST", "/keys/signing/rotate", tenant=tenant)
    assert r.status_code == 201, r.text
    kids = [k["kid"] for k in requests.get(server.url("/.well-known/jwks.json", tenant)).json()["keys"]]
    assert len(kids) == 3
    ui = requests.get(app.url("/userinfo"), headers={"Authorization": "Bearer " + old})
    assert ui.status_code == 200


def test_tenant_es256_keys(server):
    tenant = unique_id("es")
    r = server.api("POST", "/tenants", json={"id": tenant, "signing_alg": "ES256"})
    assert r.status_code == 201, r.text
    keys = requests.get(server.url("/.well-known/jwks.json", tenant)).json()["keys"]
    assert all(k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256" for k in keys)
    app = App(server, tenant)
    code, verifier = app.code()
    tokens = app.exchange(code, verifier).json()
    header = decode(tokens["id_token"])[0]
    assert header["alg"] == "ES256"


def test_cors_answers_only_the_requesting_clients_origins(server, new_tenant):
    tenant = new_tenant()
    a = App(server, tenant)
    b = App(server, tenant, web_origins=["https://b.example"], allowed_origins=["https://b.example"])
    # A's origin may not read a token response of B.
    r = requests.post(a.url("/oauth/token"), headers={"Origin": ORIGIN}, data={
        "grant_type": "authorization_code", "client_id": b.client_id, "code": "x",
        "redirect_uri": CALLBACK, "code_verifier": "y" * 43})
    assert r.status_code == 400
    assert "Access-Control-Allow-Origin" not in r.headers
    r = requests.post(a.url("/oauth/token"), headers={"Origin": ORIGIN}, data={
        "grant_type": "authorization_code", "client_id": a.client_id, "code": "x",
        "redirect_uri": CALLBACK, "code_verifier": "y" * 43})
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
