"""examples/portal_app.py over real HTTP: the portal flow of docs/multi-tenancy.md (rule (b)).

Tenant coffee-shop; Alice, a control-plane user, is a member of its organization with the
"Tenant Admin" role; she logs in to the portal (a control-plane SPA client) through the mounted
Keystead with authorization code + PKCE, organization=coffee-shop and the management audience,
and reads coffee-shop's users at /portal/users with the org-scoped token.
"""
import base64
import hashlib
import html
import importlib.util
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Optional

from keystead import Engine

from conftest import DB, MGMT_AUDIENCE, PASSWORD, free_port, settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "portal_app.py"
TENANT = "coffee-shop"
ALICE = "alice@coffeeshop.example"


def load_example():
    spec = importlib.util.spec_from_file_location("portal_app", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A user agent with cookies that does not follow redirects."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect())

    def go(self, url: str, data: Optional[dict] = None,
           headers: Optional[dict] = None) -> tuple[int, Message, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()


def hidden(page: str, name: str) -> str:
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    assert m, f"no {name} in {page[:1500]}"
    return html.unescape(m.group(1))


def test_the_portal_flow(tmp_path, serve):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Engine(settings(tmp_path, public_url=base)) as engine:
        serve(load_example().make_app(engine), port)
        run_flow(engine, base, base + "/portal/callback")


def run_flow(engine: Engine, base: str, callback: str) -> None:
    # The platform's setup, as docs/multi-tenancy.md shows it with curl.
    engine.tenants.create(id=TENANT, friendly_name="Coffee Shop")
    barista = engine.users.create(connection=DB, email="barista@coffeeshop.example",
                                  password=PASSWORD, tenant=TENANT)
    alice = engine.users.create(connection=DB, email=ALICE, password=PASSWORD)["user_id"]
    org = engine.organizations.get_by_name(TENANT)
    assert org["metadata"] == {"tenant_id": TENANT}
    [role] = engine.roles.list(name_filter="Tenant Admin")
    engine.organizations.add_members(org["id"], [alice])
    engine.organizations.add_member_roles(org["id"], alice, [role["id"]])
    portal = engine.clients.create(name="Platform Portal", app_type="spa", callbacks=[callback],
                                   web_origins=[base], allowed_origins=[base],
                                   grant_types=["authorization_code", "refresh_token"])

    # Alice logs in through the mounted Keystead: /authorize, the hosted login form, the code.
    browser = Browser()
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = "st-" + secrets.token_hex(6)
    status, headers, _ = browser.go(base + "/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": portal["client_id"], "redirect_uri": callback,
        "scope": "openid profile email", "state": state, "nonce": secrets.token_hex(6),
        "code_challenge": challenge, "code_challenge_method": "S256", "prompt": "login",
        "organization": TENANT, "audience": MGMT_AUDIENCE}))
    assert status == 302 and "/u/login?" in headers["Location"], headers
    status, _, page = browser.go(urllib.parse.urljoin(base, headers["Location"]))
    assert status == 200 and 'name="_csrf"' in page
    action = re.search(r'<form method="post" action="([^"]*)"', page)
    assert action, page[:1500]
    status, headers, _ = browser.go(
        urllib.parse.urljoin(base, html.unescape(action.group(1))),
        {"state": hidden(page, "state"), "_csrf": hidden(page, "_csrf"), "username": ALICE,
         "password": PASSWORD})
    assert status == 302 and headers["Location"].startswith(callback), headers
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))
    assert query["state"] == state
    status, _, body = browser.go(base + "/oauth/token", {
        "grant_type": "authorization_code", "client_id": portal["client_id"],
        "code": query["code"], "redirect_uri": callback, "code_verifier": verifier})
    assert status == 200, body
    token = json.loads(body)["access_token"]
    claims = engine.tokens.verify(token, audience=MGMT_AUDIENCE)
    assert (claims["sub"], claims["org_name"], claims["org_id"]) == (alice, TENANT, org["id"])
    assert claims["iss"] == base + "/"

    # The portal route with the org-scoped token: coffee-shop's users, not the control plane's.
    status, _, body = browser.go(base + "/portal/users",
                                 headers={"Authorization": "Bearer " + token})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["tenant"] == TENANT
    assert [u["user_id"] for u in answer["users"]] == [barista["user_id"]]

    # No token: 401 with a Bearer challenge.
    status, headers, body = browser.go(base + "/portal/users")
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"

    # A control-plane machine token with read:users but no organization: 403.
    m2m = engine.clients.create(name="automation", app_type="non_interactive")
    engine.client_grants.create(client_id=m2m["client_id"], audience=MGMT_AUDIENCE,
                                scope=["read:users"])
    status, _, body = browser.go(base + "/oauth/token", {
        "grant_type": "client_credentials", "client_id": m2m["client_id"],
        "client_secret": m2m["client_secret"], "audience": MGMT_AUDIENCE})
    assert status == 200, body
    plain = json.loads(body)["access_token"]
    status, headers, body = browser.go(base + "/portal/users",
                                       headers={"Authorization": "Bearer " + plain})
    assert status == 403 and 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert json.loads(body)["error"] == "insufficient_scope"

    # The rest of the site is Keystead, under the same issuer.
    status, _, body = browser.go(base + f"/t/{TENANT}/.well-known/openid-configuration")
    assert status == 200 and json.loads(body)["issuer"] == f"{base}/t/{TENANT}/"

