"""/oauth/token with client_credentials (RFC 6749 §4.4) and the access-token format."""
import time

import pytest

from jwtutil import decode, verify_rs256
from kshttp import (BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET, CONTROL_PLANE, MGMT_AUDIENCE,
                    assert_oauth_error)


def test_client_secret_post(server):
    r = server.client_credentials(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["access_token"].count(".") == 2
    assert "no-store" in r.headers.get("Cache-Control", "")


def test_client_secret_basic(server):
    r = server.token_request(auth=(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET),
                             grant_type="client_credentials", audience=MGMT_AUDIENCE)
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


def test_wrong_secret_is_invalid_client(server):
    r = server.client_credentials(BOOTSTRAP_CLIENT_ID, "not-the-secret")
    assert_oauth_error(r, 401, "invalid_client")
    r = server.token_request(auth=(BOOTSTRAP_CLIENT_ID, "not-the-secret"),
                             grant_type="client_credentials", audience=MGMT_AUDIENCE)
    assert_oauth_error(r, 401, "invalid_client")


def test_unknown_client_is_invalid_client(server):
    r = server.client_credentials("no-such-client", BOOTSTRAP_CLIENT_SECRET)
    assert_oauth_error(r, 401, "invalid_client")


def test_unknown_audience_is_access_denied(server):
    r = server.client_credentials(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET,
                                  audience="https://no-such-api.example")
    assert_oauth_error(r, 403, "access_denied")


def test_no_audience_without_default_audience_is_invalid_request(server):
    r = server.client_credentials(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET, audience=None)
    assert_oauth_error(r, 400, "invalid_request")


@pytest.mark.parametrize("grant", ["urn:example:unsupported", "implicit"])
def test_unsupported_grant_type(server, grant):
    r = server.token_request(grant_type=grant, client_id=BOOTSTRAP_CLIENT_ID,
                             client_secret=BOOTSTRAP_CLIENT_SECRET)
    assert_oauth_error(r, 400, "unsupported_grant_type")


def test_missing_grant_type_is_invalid_request(server):
    r = server.token_request(client_id=BOOTSTRAP_CLIENT_ID, client_secret=BOOTSTRAP_CLIENT_SECRET)
    assert_oauth_error(r, 400, "invalid_request")


def test_access_token_format_and_signature(server):
    before = int(time.time()) - 5
    token = server.client_credentials(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET).json()[
        "access_token"]
    header, _, _, _ = decode(token)
    assert header["typ"].lower() in ("at+jwt", "application/at+jwt"), header
    assert header["alg"] == "RS256"
    jwks = server.req("GET", "/.well-known/jwks.json").json()
    header, claims = verify_rs256(token, jwks)

    assert claims["iss"] == server.issuer()
    assert claims["sub"] == f"{BOOTSTRAP_CLIENT_ID}@clients"
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert MGMT_AUDIENCE in aud
    assert claims["azp"] == BOOTSTRAP_CLIENT_ID
    scopes = claims["scope"].split()
    for s in ("read:users", "create:users", "create:tenants", "admin:organizations"):
        assert s in scopes, f"bootstrap client's token lacks {s}: {scopes}"
    assert isinstance(claims["iat"], int) and before <= claims["iat"] <= time.time() + 5
    assert isinstance(claims["exp"], int) and claims["exp"] > claims["iat"]
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert claims["tenant_id"] == CONTROL_PLANE
    assert "org_id" not in claims


def test_each_token_has_a_fresh_jti(server):
    a = server.client_credentials(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET).json()
    b = server.client_credentials(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET).json()
    assert decode(a["access_token"])[1]["jti"] != decode(b["access_token"])[1]["jti"]


def test_json_token_request(server):
    # Auth0 SDKs post JSON to /oauth/token.
    r = server.session.post(server.url("/oauth/token"), json={
        "grant_type": "client_credentials", "client_id": BOOTSTRAP_CLIENT_ID,
        "client_secret": BOOTSTRAP_CLIENT_SECRET, "audience": MGMT_AUDIENCE})
    assert r.status_code == 200, r.text


def test_child_tenant_token_for_its_own_api(server, new_tenant):
    """A client of a child tenant gets a token for an API of that tenant, signed with the
    tenant's key and issued by the tenant's issuer."""
    t = new_tenant()
    rs = server.api("POST", "/resource-servers", tenant=t, json={
        "name": "Things", "identifier": "https://api.things.test",
        "scopes": [{"value": "read:things", "description": "Read things"},
                   {"value": "write:things", "description": "Write things"}]})
    assert rs.status_code == 201, rs.text
    client = server.api("POST", "/clients", tenant=t,
                        json={"name": "worker", "app_type": "non_interactive"})
    assert client.status_code == 201, client.text
    cid, secret = client.json()["client_id"], client.json()["client_secret"]

    # No grant yet: access_denied.
    r = server.client_credentials(cid, secret, "https://api.things.test", tenant=t)
    assert_oauth_error(r, 403, "access_denied")

    g = server.api("POST", "/client-grants", tenant=t, json={
        "client_id": cid, "audience": "https://api.things.test", "scope": ["read:things"]})
    assert g.status_code == 201, g.text
    r = server.client_credentials(cid, secret, "https://api.things.test", tenant=t)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]

    jwks = server.req("GET", "/.well-known/jwks.json", tenant=t).json()
    _, claims = verify_rs256(token, jwks)
    assert claims["iss"] == server.issuer(t)
    assert claims["tenant_id"] == t
    assert claims["sub"] == f"{cid}@clients"
    assert claims["azp"] == cid
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert "https://api.things.test" in aud
    assert claims["scope"].split() == ["read:things"]

    # The child's client does not exist on the control plane.
    r = server.client_credentials(cid, secret, "https://api.things.test")
    assert_oauth_error(r, 401, "invalid_client")
