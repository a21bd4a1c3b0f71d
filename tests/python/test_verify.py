"""TokenVerifier, Claims and the require_token WSGI guard."""
import json

import pytest

from keystead import AuthError, Claims, Engine, TokenVerifier, require_token

from conftest import API, Machine, call


def test_claims_accessors():
    c = Claims({"scope": "read:a write:a", "permissions": ["admin:x", 3],
                "org_id": "org_1", "org_name": "acme"})
    assert c.scopes == {"read:a", "write:a"} and c.permissions == {"admin:x"}
    assert (c.org_id, c.org_name) == ("org_1", "acme")
    assert c.has_scope("write:a") and c.has_scope("admin:x") and not c.has_scope("read:b")
    empty = Claims({"scope": 5})
    assert empty.scopes == set() and empty.permissions == set() and empty.org_id is None


def test_verify_and_verify_header(engine: Engine, machine: Machine, tenant: str):
    verifier = TokenVerifier(engine, API)
    token = machine.token()
    claims = verifier.verify(token)
    assert isinstance(claims, Claims) and claims.scopes == {"read:orders"}
    assert verifier.verify_header("Bearer " + token) == claims
    assert verifier.verify_header("  bearer   " + token + " ") == claims
    for bad in (None, "", "Bearer", "Basic abc", "Bearer a b", "Bearer " + token + "x"):
        with pytest.raises(AuthError):
            verifier.verify_header(bad)
    with pytest.raises(AuthError):  # pinned to another tenant
        TokenVerifier(engine, API, tenant=tenant).verify(token)
    with pytest.raises(AuthError):  # another audience
        TokenVerifier(engine, "https://other.example").verify(token)


def orders(environ, start_response):
    """The protected API: echoes the caller."""
    claims = environ["keystead.claims"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"sub": claims["sub"], "scopes": sorted(claims.scopes)}).encode()]


def _challenge(headers: list) -> str:
    return dict(headers)["WWW-Authenticate"]


def test_require_token(engine: Engine, machine: Machine):
    verifier = TokenVerifier(engine, API)
    read = require_token(verifier, scopes=["read:orders"])(orders)
    write = require_token(verifier, scopes=("read:orders", "write:orders"))(orders)
    org_only = require_token(verifier, org=True)(orders)
    assert read.__name__ == "orders" and "protected API" in read.__doc__
    token = machine.token()
    auth = {"Authorization": "Bearer " + token}

    status, headers, body = call(read, "GET", "/orders")
    assert status == "401 Unauthorized" and _challenge(headers) == "Bearer"
    assert json.loads(body)["error_description"] == "Missing bearer token"

    status, headers, body = call(read, "GET", "/orders", headers={"Authorization": "Bearer x"})
    assert status == "401 Unauthorized"
    assert _challenge(headers).startswith('Bearer error="invalid_token", error_description="')
    assert json.loads(body)["error"] == "invalid_token"

    status, headers, body = call(write, "GET", "/orders", headers=auth)
    assert status == "403 Forbidden"
    assert 'error="insufficient_scope"' in _challenge(headers)
    assert 'scope="read:orders write:orders"' in _challenge(headers)
    assert json.loads(body) == {"error": "insufficient_scope",
                                "error_description": "Insufficient scope, expected: write:orders"}

    status, headers, body = call(org_only, "GET", "/orders", headers=auth)
    assert status == "403 Forbidden" and "organization" in json.loads(body)["error_description"]

    status, headers, body = call(read, "GET", "/orders", headers=auth)
    assert status == "200 OK"
    assert json.loads(body) == {"sub": machine.client_id + "@clients", "scopes": ["read:orders"]}
