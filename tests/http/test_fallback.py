"""Runtime fallback over real HTTP: a child tenant's logins inherit the control plane's fallback
client URL lists (KEYSTEAD_CONTROL_PLANE_CLIENT_ID, given here as the `serve` flag) and its
connections, whose secrets stay sealed on the control plane. The upstream identity provider of
the federated login is another tenant of the same server, so all traffic stays on 127.0.0.1."""
import base64
import json

import pytest
import requests

from kshttp import Server, quote, run_cli, unique_id
from test_login import CALLBACK, PASSWORD, App, hidden, pkce, query

PORTAL = "https://portal.example"
PORTAL_CALLBACK = PORTAL + "/cb"
PORTAL_BYE = PORTAL + "/bye"
WIDGETS = "https://widgets.portal.example"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A server whose control plane has a fallback client (created with the CLI before start)."""
    root = tmp_path_factory.mktemp("fallback")
    made = run_cli(root / "data", "client", "create", "--tenant", "control_plane", "--name",
                   "Platform portal", "--app-type", "spa")
    assert made.returncode == 0, made.stderr
    client_id = json.loads(made.stdout)["client_id"]
    srv = Server(root / "data", root / "logs", args=["--control-plane-client-id", client_id],
                 name="fallback-server")
    r = srv.api("PATCH", f"/clients/{client_id}", json={
        "callbacks": [PORTAL_CALLBACK], "web_origins": [PORTAL], "allowed_origins": [WIDGETS],
        "allowed_logout_urls": [PORTAL_BYE]})
    assert r.status_code == 200, r.text
    srv.fallback_client = client_id
    yield srv
    srv.kill()
    srv.close_files()


@pytest.fixture
def child(platform):
    tid = unique_id()
    r = platform.api("POST", "/tenants", json={"id": tid})
    assert r.status_code == 201, r.text
    return tid


@pytest.fixture(scope="module")
def upstream(platform):
    """An upstream OpenID provider (tenant `idp-…` of the same server) and the control plane's
    oidc connection to it — the only oidc connection of the control plane, so children inherit
    it. Its client's callbacks are added per child by `allow_child`."""
    tid = unique_id("idp")
    assert platform.api("POST", "/tenants", json={"id": tid}).status_code == 201
    r = platform.api("POST", "/clients", tenant=tid, json={
        "name": "Platform login", "app_type": "regular_web", "grant_types": ["authorization_code"],
        "callbacks": [], "token_endpoint_auth_method": "client_secret_post"})
    assert r.status_code == 201, r.text
    client = r.json()
    email = f"{unique_id('up')}@example.com"
    r = platform.api("POST", "/users", tenant=tid, json={
        "email": email, "password": PASSWORD, "connection": "Username-Password-Authentication",
        "email_verified": True, "name": "Upstream User"})
    assert r.status_code == 201, r.text
    r = platform.api("POST", "/connections", json={
        "name": "platform-sso", "strategy": "oidc", "display_name": "Platform SSO",
        "options": {"issuer": platform.issuer(tid), "client_id": client["client_id"],
                    "client_secret": client["client_secret"]}})
    assert r.status_code == 201, r.text
    assert "client_secret" not in r.json()["options"]

    class Upstream:
        tenant = tid
        client_id = client["client_id"]
        secret = client["client_secret"]
        user_email = email

        def allow_child(self, child_tenant):
            cur = platform.api("GET", f"/clients/{self.client_id}", tenant=tid).json()
            cbs = cur["callbacks"] + [platform.issuer(child_tenant) + "login/callback"]
            r = platform.api("PATCH", f"/clients/{self.client_id}", tenant=tid,
                             json={"callbacks": cbs})
            assert r.status_code == 200, r.text

    return Upstream()


# ---- clients ---------------------------------------------------------------------------------------

def test_child_client_inherits_the_fallback_clients_urls(platform, child):
    app = App(platform, child)
    # /authorize: the control plane's callback works for the child's client.
    r, _, _ = app.authorize(redirect_uri=PORTAL_CALLBACK)
    assert r.status_code == 302 and "/u/login?state=" in r.headers["Location"], r.text
    r, _, _ = app.authorize(redirect_uri=PORTAL_CALLBACK, response_mode="web_message")
    assert r.status_code == 302, r.text
    r, _, _ = app.authorize(redirect_uri="https://evil.example/cb")
    assert r.status_code == 400 and "Location" not in r.headers
    # Logout: returnTo may be the control plane's.
    r = requests.get(app.url("/v2/logout"), params={"client_id": app.client_id,
                                                    "returnTo": PORTAL_BYE},
                     allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == PORTAL_BYE
    r = requests.get(app.url("/oidc/logout"), params={"client_id": app.client_id,
                                                      "post_logout_redirect_uri": PORTAL_BYE},
                     allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == PORTAL_BYE
    r = requests.get(app.url("/v2/logout"), params={"client_id": app.client_id,
                                                    "returnTo": "https://evil.example/bye"},
                     allow_redirects=False)
    assert r.status_code == 400
    # CORS: the control plane's web and allowed origins, for requests and preflights.
    for origin in (PORTAL, WIDGETS):
        r = requests.post(app.url("/oauth/token"), headers={"Origin": origin}, data={
            "grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": "nope"})
        assert r.headers.get("Access-Control-Allow-Origin") == origin
        pre = requests.options(app.url("/oauth/token"), headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert pre.headers.get("Access-Control-Allow-Origin") == origin
    r = requests.post(app.url("/oauth/token"), headers={"Origin": "https://evil.example"}, data={
        "grant_type": "refresh_token", "client_id": app.client_id, "refresh_token": "nope"})
    assert "Access-Control-Allow-Origin" not in r.headers
    # The whole login with the inherited callback.
    code_resp, verifier, state = app.login(redirect_uri=PORTAL_CALLBACK)
    assert code_resp.status_code == 302 and code_resp.headers["Location"].startswith(PORTAL_CALLBACK)
    # The Management API shows the child's own lists only.
    own = platform.api("GET", f"/clients/{app.client_id}", tenant=child).json()
    assert own["callbacks"] == [CALLBACK]
    assert PORTAL not in json.dumps(own)


def test_control_plane_clients_do_not_inherit(platform):
    app = App(platform, None)
    r, _, _ = app.authorize(redirect_uri=PORTAL_CALLBACK)
    assert r.status_code == 400


# ---- connections ------------------------------------------------------------------------------------

def federated_login(platform, child_app, upstream, connection):
    """/authorize?connection=… on the child → the upstream's login → back: the final redirect."""
    verifier, challenge = pkce()
    b = child_app.browser
    r = b.get(child_app.url("/authorize"), params={
        "response_type": "code", "client_id": child_app.client_id, "redirect_uri": CALLBACK,
        "scope": "openid profile email", "state": "st", "code_challenge": challenge,
        "code_challenge_method": "S256", "connection": connection}, allow_redirects=False)
    assert r.status_code == 302, r.text
    up = r.headers["Location"]
    assert up.startswith(platform.issuer(upstream.tenant) + "authorize?"), up
    q = query(up)
    assert q["client_id"] == upstream.client_id  # the control plane's, through the fallback
    assert q["redirect_uri"] == child_app.url("/login/callback")
    r = b.get(up, allow_redirects=False)
    assert r.status_code == 302, r.text
    page = b.get(r.headers["Location"])
    assert page.status_code == 200, page.text
    r = b.post(platform.url("/u/login", upstream.tenant), data={
        "state": hidden(page.text, "state"), "_csrf": hidden(page.text, "_csrf"),
        "username": upstream.user_email, "password": PASSWORD}, allow_redirects=False)
    assert r.status_code == 302, r.text
    back = r.headers["Location"]
    assert back.startswith(child_app.url("/login/callback?")), back
    r = b.get(back, allow_redirects=False)
    assert r.status_code == 302, r.text
    return r.headers["Location"], verifier


def test_child_logs_in_through_the_control_planes_connection(platform, child, upstream):
    upstream.allow_child(child)
    app = App(platform, child)
    # The child has no oidc connection of its own; the login page offers the inherited one.
    assert platform.api("GET", "/connections", tenant=child, params={"strategy": "oidc"}).json() == []
    r, _, _ = app.authorize()
    page = app.browser.get(r.headers["Location"])
    assert "Continue with Platform SSO" in page.text
    final, verifier = federated_login(platform, app, upstream, "platform-sso")
    assert final.startswith(CALLBACK + "?code="), final
    tokens = app.exchange(query(final)["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    payload = tokens.json()["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"].startswith("oidc|auth0|")
    assert claims["iss"] == platform.issuer(child)
    assert claims["email"] == upstream.user_email
    user = platform.api("GET", f"/users/{quote(claims['sub'])}", tenant=child)
    assert user.status_code == 200
    assert user.json()["identities"][0]["connection"] == "platform-sso"
    # Secrets are write-only everywhere: neither the child nor the control plane shows them.
    for tenant in (None, child):
        for path in ("/connections", "/clients", "/tenants/settings"):
            body = platform.api("GET", path, tenant=tenant).text
            assert upstream.secret not in body and '"_secret' not in body, (tenant, path)


def test_child_keys_win_and_present_empty_values_do_not_fall_back(platform, child, upstream):
    upstream.allow_child(child)
    app = App(platform, child)
    # The child's own oidc connection with only a scope: issuer, client id and secret come from
    # the control plane's (first) oidc connection.
    r = platform.api("POST", "/connections", tenant=child, json={
        "name": "own-sso", "strategy": "oidc", "options": {"scope": "openid email"}})
    assert r.status_code == 201, r.text
    con_id = r.json()["id"]
    final, verifier = federated_login(platform, app, upstream, "own-sso")
    assert final.startswith(CALLBACK + "?code="), final
    assert app.exchange(query(final)["code"], verifier).status_code == 200
    # With its own connection of the strategy, the control plane's is no longer reachable.
    r, _, _ = app.authorize(connection="platform-sso")
    assert query(r.headers["Location"])["error"] == "invalid_request"
    # client_id "" is present: it does not fall back, so the connection has no client id.
    r = platform.api("PATCH", f"/connections/{con_id}", tenant=child,
                     json={"options": {"client_id": ""}})
    assert r.status_code == 200, r.text
    r, _, _ = app.authorize(connection="own-sso")
    q = query(r.headers["Location"])
    assert r.headers["Location"].startswith(CALLBACK)
    assert q["error"] == "server_error" and q["error_description"] == "The connection has no client_id"


def test_management_api_of_the_child_shows_only_its_own_connections(platform, child, upstream):
    names = [c["name"] for c in platform.api("GET", "/connections", tenant=child).json()]
    assert names == ["Username-Password-Authentication"]
    cp = platform.api("GET", "/connections").json()
    sso = [c for c in cp if c["name"] == "platform-sso"][0]
    assert "client_secret_hint" in sso["options"] and "client_secret" not in sso["options"]
