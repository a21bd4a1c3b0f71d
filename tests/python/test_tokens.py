"""Tokens issued and verified without HTTP, and password checks."""
import base64
import json

import pytest

from keystead import AuthError, Engine, ForbiddenError

from conftest import API, DB, MGMT_AUDIENCE, PASSWORD, Machine, unique


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_client_credentials_issue_and_verify(engine: Engine, machine: Machine):
    response = engine.tokens.issue({"grant_type": "client_credentials",
                                    "client_id": machine.client_id},
                                   client_secret=machine.secret, audience=API)
    assert response["token_type"] == "Bearer" and response["expires_in"] > 0
    claims = engine.tokens.verify(response["access_token"], audience=API)
    assert claims == _payload(response["access_token"])
    assert claims["iss"] == "http://127.0.0.1:8080/" and claims["scope"] == "read:orders"
    assert claims["sub"] == machine.client_id + "@clients"
    assert API in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    # Pinned to its issuing tenant, and without an audience check.
    assert engine.tokens.verify(response["access_token"], tenant="control_plane")["sub"] == \
        claims["sub"]


def test_a_child_tenant_issues_its_own_tokens(engine: Engine, tenant: str):
    """The API is synced from the control plane; a client of the tenant gets a token whose
    issuer is the tenant's, which only that tenant verifies."""
    child = Machine(engine, tenant, ("read:orders",))
    token = child.token()
    claims = engine.tokens.verify(token, tenant=tenant, audience=API)
    assert claims["iss"] == f"http://127.0.0.1:8080/t/{tenant}/"
    with pytest.raises(AuthError):
        engine.tokens.verify(token, tenant="control_plane")


def test_audience_mismatch_is_auth_error(engine: Engine, machine: Machine):
    with pytest.raises(AuthError, match="audience"):
        engine.tokens.verify(machine.token(), audience=MGMT_AUDIENCE)


@pytest.mark.parametrize("tamper", ["payload", "signature"])
def test_a_tampered_token_is_auth_error(engine: Engine, machine: Machine, tamper: str):
    header, payload, signature = machine.token().split(".")
    if tamper == "payload":
        claims = _payload("." + payload)
        claims["scope"] = "read:orders write:orders"
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    else:
        signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthError) as e:
        engine.tokens.verify(".".join([header, payload, signature]), audience=API)
    assert e.value.code == -5 and e.value.message


def test_an_audience_without_a_grant_is_forbidden(engine: Engine, machine: Machine):
    """The client has no grant for the Management API: 403 access_denied."""
    with pytest.raises(ForbiddenError) as e:
        machine.token(audience=MGMT_AUDIENCE)
    assert e.value.status == 403 and e.value.error_code == "access_denied"
    assert "client-grant" in e.value.message


def test_check_password(engine: Engine, tenant: str):
    email = f"{unique('pw')}@example.com"
    user = engine.users.create(connection=DB, email=email, password=PASSWORD, tenant=tenant)
    assert engine.check_password(email, PASSWORD, tenant=tenant) == user["user_id"]
    assert engine.check_password(email, PASSWORD, tenant=tenant, connection=DB) == \
        user["user_id"]
    for tenant_, email_, password in ((tenant, email, PASSWORD + "x"),
                                      (tenant, "nobody@example.com", PASSWORD),
                                      (None, email, PASSWORD)):  # not a control-plane user
        with pytest.raises(AuthError) as e:
            engine.check_password(email_, password, tenant=tenant_)
        assert e.value.message == "Wrong email or password."


def test_for_user_issues_org_scoped_tokens(engine: Engine, tenant: str):
    """tokens.for_user: the host vouches for a user; membership of the organization is checked."""
    user = engine.users.create(connection=DB, email=f"{unique('host')}@example.com",
                               password=PASSWORD)
    org = engine.organizations.get_by_name(tenant)
    app = engine.clients.create(name=unique("host-app"), app_type="regular_web")
    with pytest.raises(ForbiddenError) as denied:
        engine.tokens.for_user(user["user_id"], client_id=app["client_id"],
                               audience=MGMT_AUDIENCE, organization=tenant)
    assert denied.value.error_code == "access_denied"
    engine.organizations.add_members(org["id"], [user["user_id"]])
    tokens = engine.tokens.for_user(user["user_id"], client_id=app["client_id"],
                                    audience=MGMT_AUDIENCE, organization=tenant)
    claims = engine.tokens.verify(tokens["access_token"], audience=MGMT_AUDIENCE)
    assert (claims["sub"], claims["org_name"]) == (user["user_id"], tenant)
