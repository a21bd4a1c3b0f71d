"""Tenant settings over real HTTP: a child's missing settings come from the control plane, and the
control plane's `settings.constraints` put floors and ceilings under/over what a child may set
(422 constraint-violation, nothing changed) and over what the flows use (clamped at read).
These tests change the control plane's settings, so they run on a server of their own."""
import pytest

from kshttp import Server, assert_error, unique_id
from test_login import App, hidden

CONSTRAINTS = {"password_min_length": {"min": 10},
               "access_token_lifetime": {"max": 3600},
               "refresh_token_lifetime": {"max": 86400},
               "brute_force_protection.max_attempts": {"max": 5}}
VIOLATIONS = [  # (settings, the setting the message names, the bound it names)
    ({"password_min_length": 8}, "password_min_length", "minimum of 10"),
    ({"access_token_lifetime": 7200}, "access_token_lifetime", "maximum of 3600"),
    ({"refresh_token_lifetime": 100000}, "refresh_token_lifetime", "maximum of 86400"),
    ({"brute_force_protection": {"max_attempts": 50}}, "brute_force_protection.max_attempts",
     "maximum of 5"),
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("constraints")
    s = Server(root / "data", root / "logs", name="constraints-server")
    yield s
    s.kill()
    s.close_files()


@pytest.fixture(autouse=True)
def clean_platform(srv):
    """Each test starts and ends with no platform constraints or password minimum."""
    reset = {"constraints": None, "password_min_length": None}
    assert srv.api("PATCH", "/tenants/settings", json=reset).status_code == 200
    yield
    assert srv.api("PATCH", "/tenants/settings", json=reset).status_code == 200


@pytest.fixture
def child(srv):
    tid = unique_id()
    assert srv.api("POST", "/tenants", json={"id": tid}).status_code == 201
    return tid


def signup(app, password):
    """The hosted signup page of app's tenant with a new email; returns the POST response."""
    app.browser.cookies.clear()
    r, _, _ = app.authorize(screen_hint="signup")
    page = app.browser.get(r.headers["Location"])
    assert page.status_code == 200, page.text
    return app.browser.post(app.url("/u/signup"), data={
        "state": hidden(page.text, "state"), "_csrf": hidden(page.text, "_csrf"),
        "username": f"{unique_id('s')}@example.com", "password": password},
        allow_redirects=False)


def password_tokens(srv, app):
    return srv.token_request(app.tenant, grant_type="password", client_id=app.client_id,
                             username=app.email, password="Correct-Horse-9-battery",
                             scope="openid")


def test_missing_settings_come_from_the_control_plane(srv, child):
    app = App(srv, child)
    assert srv.api("PATCH", "/tenants/settings", json={"password_min_length": 14}).status_code == 200
    r = signup(app, "thirteen char")
    assert r.status_code == 400 and "at least 14 characters" in r.text
    assert "password_min_length" not in srv.api("GET", "/tenants/settings", tenant=child).json()
    assert srv.api("PATCH", "/tenants/settings", tenant=child,
                   json={"password_min_length": 9}).status_code == 200
    r = signup(app, "nine char")
    assert r.status_code == 302 and "code=" in r.headers["Location"], r.text


@pytest.mark.parametrize("settings,setting,bound", VIOLATIONS)
def test_each_constraint_is_refused_and_changes_nothing(srv, child, settings, setting, bound):
    assert srv.api("PATCH", "/tenants/settings", json={"constraints": CONSTRAINTS}).status_code == 200
    before = srv.api("GET", "/tenants/settings", tenant=child).json()
    tenant_before = srv.api("GET", f"/tenants/{child}").json()
    body = dict(settings, support_url="https://changed.example")
    for resp in (srv.api("PATCH", "/tenants/settings", tenant=child, json=body),
                 srv.api("PATCH", f"/tenants/{child}",
                         json={"friendly_name": "Renamed", "settings": body})):
        err = assert_error(resp, 422)
        assert err["errorCode"] == "constraint-violation"
        assert setting in err["message"] and bound in err["message"], err
    new_id = unique_id()
    err = assert_error(srv.api("POST", "/tenants", json={"id": new_id, "settings": settings}), 422)
    assert err["errorCode"] == "constraint-violation"
    assert srv.api("GET", f"/tenants/{new_id}").status_code == 404
    assert srv.api("GET", "/tenants/settings", tenant=child).json() == before
    assert srv.api("GET", f"/tenants/{child}").json() == tenant_before


def test_values_within_the_bounds_are_accepted(srv, child):
    assert srv.api("PATCH", "/tenants/settings", json={"constraints": CONSTRAINTS}).status_code == 200
    ok = {"password_min_length": 10, "access_token_lifetime": 3600,
          "brute_force_protection": {"max_attempts": 5}}
    r = srv.api("PATCH", "/tenants/settings", tenant=child, json=ok)
    assert r.status_code == 200, r.text
    assert r.json()["access_token_lifetime"] == 3600
    r = srv.api("POST", "/tenants", json={"id": unique_id(), "settings": ok})
    assert r.status_code == 201, r.text


def test_only_the_control_plane_sets_constraints(srv, child):
    c = {"constraints": {"password_min_length": {"min": 6}}}
    for r in (srv.api("PATCH", "/tenants/settings", tenant=child, json=c),
              srv.api("PATCH", f"/tenants/{child}", json={"settings": c}),
              srv.api("POST", "/tenants", json={"id": unique_id(), "settings": c})):
        err = assert_error(r, 403)
        assert "Only the control plane may set constraints" in err["message"]
    assert "constraints" not in srv.api("GET", "/tenants/settings", tenant=child).json()
    bad = assert_error(srv.api("PATCH", "/tenants/settings",
                               json={"constraints": {"mfa_required": {"min": True}}}), 400)
    assert "mfa_required" in bad["message"]
    assert_error(srv.api("PATCH", "/tenants/settings",
                         json={"constraints": {"access_token_lifetime": {"min": 9, "max": 5}}}),
                 400)
    r = srv.api("PATCH", "/tenants/settings", json=c)
    assert r.status_code == 200 and r.json()["constraints"] == c["constraints"]


def test_access_token_lifetime_is_clamped_at_read(srv, child):
    app = App(srv, child)
    assert srv.api("PATCH", "/tenants/settings", tenant=child,
                   json={"access_token_lifetime": 7200}).status_code == 200
    r = password_tokens(srv, app)
    assert r.status_code == 200, r.text
    assert r.json()["expires_in"] == 7200
    # The platform lowers the ceiling after the child chose its value.
    assert srv.api("PATCH", "/tenants/settings",
                   json={"constraints": {"access_token_lifetime": {"max": 3600}}}).status_code == 200
    assert srv.api("GET", "/tenants/settings", tenant=child).json()["access_token_lifetime"] == 7200
    r = password_tokens(srv, app)
    assert r.status_code == 200, r.text
    assert r.json()["expires_in"] == 3600


def test_password_floor_is_clamped_at_read(srv, child):
    app = App(srv, child)
    assert srv.api("PATCH", "/tenants/settings", tenant=child,
                   json={"password_min_length": 6}).status_code == 200
    assert signup(app, "eight ok!").status_code == 302
    assert srv.api("PATCH", "/tenants/settings",
                   json={"constraints": {"password_min_length": {"min": 14}}}).status_code == 200
    r = signup(app, "thirteen char")
    assert r.status_code == 400 and "at least 14 characters" in r.text
    assert signup(app, "fourteen chars").status_code == 302
