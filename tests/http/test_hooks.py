"""Lua hooks through the real server: /api/v2/hooks, and real logins, signups and
client_credentials exchanges running real scripts (docs/hooks.md)."""
import re
from pathlib import Path

import pytest

from kshttp import assert_error, assert_oauth_error, quote, unique_id
from portal_helpers import (PASSWORD, PORTAL_CALLBACK, Browser, claims, create_m2m_client,
                            create_spa_client, create_user, ok, redirect_params)

ROOT = Path(__file__).resolve().parents[2]
TRIGGER_OF = {"onExecutePostLogin": "post-login",
              "onExecuteCredentialsExchange": "credentials-exchange",
              "onExecutePreUserRegistration": "pre-user-registration",
              "onExecutePostUserRegistration": "post-user-registration",
              "shouldSync": "sync-filter"}

CLAIMS_HOOK = """
function onExecutePostLogin(event, api)
  api.accessToken.setCustomClaim("https://hooks.test/roles", event.authorization.roles)
  api.accessToken.setCustomClaim("https://hooks.test/tenant", event.tenant.id)
  api.idToken.setCustomClaim("https://hooks.test/email", event.user.email)
  api.idToken.setCustomClaim("https://hooks.test/client", event.client.name)
  api.user.setAppMetadata("plan", "gold")
  api.user.setUserMetadata("greeting", "hello " .. event.user.email)
end
"""


def add_hook(server, tenant, trigger, code, **extra):
    body = {"trigger_id": trigger, "code": code, **extra}
    return ok(server.api("POST", "/hooks", tenant=tenant, json=body), 201, "create hook")


def login_page(browser):
    """Opens the hosted login page; (page, verifier, state)."""
    return browser.open_page(prompt="login")


def denied_login(browser, email):
    """Logs in and expects the login to end at the redirect URI with access_denied; returns the
    error description."""
    page, _, state = login_page(browser)
    r = browser.submit(page, email, PASSWORD)
    assert r.status_code == 302, r.text[:1000]
    loc = r.headers["Location"]
    assert loc.startswith(PORTAL_CALLBACK), loc
    q = redirect_params(loc)
    assert q.get("error") == "access_denied", q
    assert "code" not in q, q
    assert q.get("state") == state
    return q["error_description"]


def logs_of(server, tenant):
    return ok(server.api("GET", "/logs", tenant=tenant, params={"per_page": 100}))


# --- the API -------------------------------------------------------------------------------------


def test_crud_and_compile_errors(server, new_tenant):
    tid = new_tenant()
    h = add_hook(server, tid, "post-login", "function onExecutePostLogin(event, api) end",
                 name="noop", priority=3)
    assert h["id"].startswith("hk_") and h["enabled"] is True and h["priority"] == 3
    assert ok(server.api("GET", f"/hooks/{h['id']}", tenant=tid))["name"] == "noop"
    assert [x["id"] for x in ok(server.api("GET", "/hooks", tenant=tid))] == [h["id"]]

    bad = server.api("POST", "/hooks", tenant=tid, json={
        "trigger_id": "post-login", "code": "function onExecutePostLogin(event, api)\n  x = = 1\nend"})
    body = assert_error(bad, 400)
    assert ":2:" in body["message"], body  # Lua's message with the line
    binary = server.api("POST", "/hooks", tenant=tid, json={
        "trigger_id": "post-login", "code": "\x1bLua"})
    assert_error(binary, 400)
    assert_error(server.api("POST", "/hooks", tenant=tid, json={
        "trigger_id": "on-login", "code": ""}), 400)
    assert_error(server.api("PATCH", f"/hooks/{h['id']}", tenant=tid, json={
        "code": "if then"}), 400)
    assert ok(server.api("GET", f"/hooks/{h['id']}", tenant=tid))["code"] == \
        "function onExecutePostLogin(event, api) end"

    patched = ok(server.api("PATCH", f"/hooks/{h['id']}", tenant=tid, json={"enabled": False}))
    assert patched["enabled"] is False
    assert server.api("DELETE", f"/hooks/{h['id']}", tenant=tid).status_code == 204
    assert_error(server.api("GET", f"/hooks/{h['id']}", tenant=tid), 404)


# --- post-login ---------------------------------------------------------------------------------


def test_post_login_sets_claims_and_metadata(server, new_tenant):
    tid = new_tenant()
    client_id = create_spa_client(server, tid, name="Hooked App")
    user = create_user(server, tid)
    role = ok(server.api("POST", "/roles", tenant=tid, json={"name": "editor"}), 201)
    ok(server.api("POST", f"/users/{quote(user['user_id'])}/roles", tenant=tid,
                  json={"roles": [role["id"]]}), 204)
    add_hook(server, tid, "post-login", CLAIMS_HOOK)

    tokens = Browser(server, client_id, tid).login(user["email"])
    at, idt = claims(tokens["access_token"]), claims(tokens["id_token"])
    assert at["https://hooks.test/roles"] == ["editor"]
    assert at["https://hooks.test/tenant"] == tid
    assert idt["https://hooks.test/email"] == user["email"]
    assert idt["https://hooks.test/client"] == "Hooked App"
    assert "https://hooks.test/email" not in at
    stored = ok(server.api("GET", f"/users/{quote(user['user_id'])}", tenant=tid))
    assert stored["app_metadata"]["plan"] == "gold"
    assert stored["user_metadata"]["greeting"] == "hello " + user["email"]


def test_post_login_deny_with_reason(server, new_tenant):
    tid = new_tenant()
    client_id = create_spa_client(server, tid)
    blocked = create_user(server, tid, email=f"{unique_id('blocked')}@blocked.test")
    fine = create_user(server, tid)
    add_hook(server, tid, "post-login", """
function onExecutePostLogin(event, api)
  if event.user.email:find("@blocked.test", 1, true) then
    api.access.deny("Accounts of blocked.test are suspended")
  end
end
""")
    assert denied_login(Browser(server, client_id, tid), blocked["email"]) == \
        "Accounts of blocked.test are suspended"
    assert "access_token" in Browser(server, client_id, tid).login(fine["email"])
    entries = [e for e in logs_of(server, tid) if e["type"] == "f"]
    assert any("Accounts of blocked.test are suspended" in e.get("description", "")
               for e in entries), entries


@pytest.mark.parametrize("code, reason", [
    ("function onExecutePostLogin(event, api) while true do end end", "instruction"),
    ("function onExecutePostLogin(event, api) local t = {} "
     "for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end end", "memory"),
    ("function onExecutePostLogin(event, api) error('kaboom') end", "kaboom"),
    ("function onExecutePostLogin(event, api) api.accessToken.setCustomClaim('sub', 'x') end",
     "sub"),
    ("function onExecutePostLogin(event, api) io.open('/etc/passwd') end", "io"),
])
def test_a_failing_hook_stops_the_login(server, new_tenant, code, reason):
    tid = new_tenant()
    client_id = create_spa_client(server, tid)
    user = create_user(server, tid)
    add_hook(server, tid, "post-login", code, name="faulty")
    description = denied_login(Browser(server, client_id, tid), user["email"])
    assert "faulty" in description and reason in description, description
    entries = [e for e in logs_of(server, tid) if e["type"] == "f"]
    assert any(reason in e.get("description", "") for e in entries), entries


def test_hooks_run_in_priority_order_and_disabled_ones_do_not(server, new_tenant):
    tid = new_tenant()
    client_id = create_spa_client(server, tid)
    user = create_user(server, tid)
    template = ('function onExecutePostLogin(event, api) '
                'api.accessToken.setCustomClaim("https://hooks.test/last", "{}") end')
    add_hook(server, tid, "post-login", template.format("late"), priority=10)
    add_hook(server, tid, "post-login", template.format("early"), priority=-10)
    add_hook(server, tid, "post-login", template.format("off"), priority=99, enabled=False)
    at = claims(Browser(server, client_id, tid).login(user["email"])["access_token"])
    assert at["https://hooks.test/last"] == "late"


# --- credentials-exchange -----------------------------------------------------------------------


def test_credentials_exchange_claims_and_deny(server, new_tenant):
    tid = new_tenant()
    ok(server.api("POST", "/resource-servers", tenant=tid,
                  json={"identifier": "https://api.hooks.test", "name": "Hooked API"}), 201)
    cid, secret = create_m2m_client(server, tid, audience="https://api.hooks.test", name="svc")
    add_hook(server, tid, "credentials-exchange", """
function onExecuteCredentialsExchange(event, api)
  if event.client.name == "denied" then api.access.deny("not this client") end
  api.accessToken.setCustomClaim("https://hooks.test/api", event.resource_server.identifier)
  api.accessToken.setCustomClaim("https://hooks.test/n", 42)
end
""")
    r = server.client_credentials(cid, secret, "https://api.hooks.test", tid)
    at = claims(ok(r)["access_token"])
    assert at["https://hooks.test/api"] == "https://api.hooks.test"
    assert at["https://hooks.test/n"] == 42
    assert at["sub"] == cid + "@clients"

    ok(server.api("PATCH", f"/clients/{cid}", tenant=tid, json={"name": "denied"}))
    r = server.client_credentials(cid, secret, "https://api.hooks.test", tid)
    assert_oauth_error(r, 403, "access_denied")
    assert r.json()["error_description"] == "not this client"


# --- registration -------------------------------------------------------------------------------


def test_pre_and_post_user_registration(server, new_tenant):
    tid = new_tenant()
    client_id = create_spa_client(server, tid)
    add_hook(server, tid, "pre-user-registration", """
function onExecutePreUserRegistration(event, api)
  if event.user.email:find("@spam.invalid", 1, true) then
    api.access.deny("Sign-ups from spam.invalid are not allowed")
  end
  api.user.setAppMetadata("source", "signup")
  api.user.setUserMetadata("lang", "en")
end
""")
    add_hook(server, tid, "post-user-registration", """
function onExecutePostUserRegistration(event, api)
  error("post-registration hooks cannot undo a signup: " .. event.user.user_id)
end
""")
    email = f"{unique_id('new')}@example.com"
    tokens = Browser(server, client_id, tid).signup(email)
    user_id = claims(tokens["id_token"])["sub"]
    user = ok(server.api("GET", f"/users/{quote(user_id)}", tenant=tid))
    assert user["app_metadata"] == {"source": "signup"}
    assert user["user_metadata"] == {"lang": "en"}
    warnings = [e for e in logs_of(server, tid) if e["type"] == "w"]
    assert any(user_id in e.get("description", "") for e in warnings), warnings

    browser = Browser(server, client_id, tid)
    page, _, _ = browser.open_page(screen_hint="signup")
    r = browser.submit(page, f"{unique_id('x')}@spam.invalid", PASSWORD)
    assert r.status_code == 403
    assert "Sign-ups from spam.invalid are not allowed" in r.text
    users = ok(server.api("GET", "/users", tenant=tid))
    assert not any(u["email"].endswith("@spam.invalid") for u in users)


# --- the control plane: inherited hooks and the sync filter (own server: these reach every child)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    from kshttp import session_server
    yield from session_server(tmp_path_factory, "keystead-hooks")


def test_inheritable_control_plane_hook_runs_for_children_after_their_own(platform):
    tid = unique_id()
    ok(platform.api("POST", "/tenants", json={"id": tid}), 201)
    add_hook(platform, None, "post-login", """
function onExecutePostLogin(event, api)
  api.accessToken.setCustomClaim("https://platform.test/who", "platform")
  api.accessToken.setCustomClaim("https://platform.test/tenant", event.tenant.id)
end
""", metadata={"inheritable": True}, priority=-1000)
    add_hook(platform, tid, "post-login", """
function onExecutePostLogin(event, api)
  api.accessToken.setCustomClaim("https://platform.test/who", "child")
  api.accessToken.setCustomClaim("https://platform.test/child", true)
end
""")
    client_id = create_spa_client(platform, tid)
    user = create_user(platform, tid)
    at = claims(Browser(platform, client_id, tid).login(user["email"])["access_token"])
    assert at["https://platform.test/who"] == "platform"  # the control plane's runs last
    assert at["https://platform.test/tenant"] == tid
    assert at["https://platform.test/child"] is True


def test_sync_filter_keeps_an_entity_off_a_child(platform):
    a, b = unique_id("a"), unique_id("b")
    for t in (a, b):
        ok(platform.api("POST", "/tenants", json={"id": t}), 201)
    add_hook(platform, None, "sync-filter", """
function shouldSync(kind, entity, targetTenant)
  local only = entity.metadata and entity.metadata.only_for
  return only == nil or only == targetTenant.id
end
""")
    rs = ok(platform.api("POST", "/resource-servers", json={
        "identifier": f"https://{a}.only.test", "name": "Only A", "metadata": {"only_for": a}}),
        201)
    role = ok(platform.api("POST", "/roles", json={"name": unique_id("shared")}), 201)
    assert platform.api("GET", f"/resource-servers/{rs['id']}", tenant=a).status_code == 200
    assert platform.api("GET", f"/resource-servers/{rs['id']}", tenant=b).status_code == 404
    assert platform.api("GET", f"/roles/{role['id']}", tenant=a).status_code == 200
    assert platform.api("GET", f"/roles/{role['id']}", tenant=b).status_code == 200
    # A tenant created later gets only what the filter lets through.
    c = unique_id("c")
    ok(platform.api("POST", "/tenants", json={"id": c}), 201)
    assert platform.api("GET", f"/resource-servers/{rs['id']}", tenant=c).status_code == 404
    assert platform.api("GET", f"/roles/{role['id']}", tenant=c).status_code == 200
    # sync-filter hooks are the control plane's only.
    assert_error(platform.api("POST", "/hooks", tenant=a, json={
        "trigger_id": "sync-filter", "code": ""}), 400)


# --- docs/hooks.md ------------------------------------------------------------------------------


def test_the_lua_examples_in_the_docs_are_accepted_and_run(server, new_tenant):
    text = (ROOT / "docs/hooks.md").read_text()
    blocks = re.findall(r"^```lua\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) >= 6, "docs/hooks.md: expected its Lua examples"
    tid = new_tenant()
    for code in blocks:
        trigger = TRIGGER_OF[re.search(r"function (\w+)\(", code).group(1)]
        if trigger == "sync-filter":  # the control plane's: checked, then removed
            h = add_hook(server, None, trigger, code)
            assert server.api("DELETE", f"/hooks/{h['id']}").status_code == 204
        else:
            add_hook(server, tid, trigger, code)
    # Every post-login example at once, through a real login.
    client_id = create_spa_client(server, tid)
    user = create_user(server, tid)
    at = claims(Browser(server, client_id, tid).login(user["email"])["access_token"])
    assert at["https://platform.example/tenant"] == tid
    assert "https://acme.example/roles" in at
    stored = ok(server.api("GET", f"/users/{quote(user['user_id'])}", tenant=tid))
    assert isinstance(stored["app_metadata"]["first_login"], int)
    # The suspended-account example denies with its message.
    ok(server.api("PATCH", f"/users/{quote(user['user_id'])}", tenant=tid,
                  json={"app_metadata": {"suspended": True}}))
    assert denied_login(Browser(server, client_id, tid), user["email"]) == \
        "Your account is suspended. Contact support."
