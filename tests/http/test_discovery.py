"""Health, OpenID discovery and JWKS, for the control plane and a path-routed child tenant."""
from kshttp import assert_error

REQUIRED_DISCOVERY = [
    "issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
    "revocation_endpoint", "introspection_endpoint", "response_types_supported",
    "subject_types_supported", "id_token_signing_alg_values_supported",
]
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


def test_healthz(server):
    r = server.req("GET", "/healthz")
    assert r.status_code == 200, r.text


def check_discovery(doc, issuer):
    for key in REQUIRED_DISCOVERY:
        assert key in doc, f"discovery lacks {key}: {sorted(doc)}"
    assert doc["issuer"] == issuer
    for key, value in doc.items():
        if key.endswith("_endpoint") or key == "jwks_uri":
            assert isinstance(value, str) and value.startswith(issuer), \
                f"{key} = {value!r} is not under the issuer {issuer}"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert "code" in doc["response_types_supported"]


def test_control_plane_discovery(server):
    r = server.req("GET", "/.well-known/openid-configuration")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    check_discovery(r.json(), server.issuer())
    assert r.json()["issuer"] == f"http://127.0.0.1:{server.http_port}/"


def test_tenant_discovery_is_path_routed(server, acme):
    r = server.req("GET", "/.well-known/openid-configuration", tenant=acme)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["issuer"] == f"http://127.0.0.1:{server.http_port}/t/acme/"
    check_discovery(doc, server.issuer(acme))
    assert doc["token_endpoint"] == f"http://127.0.0.1:{server.http_port}/t/acme/oauth/token"


def check_jwks(jwks):
    assert isinstance(jwks.get("keys"), list) and jwks["keys"], jwks
    for k in jwks["keys"]:
        assert k.get("kid"), k
        leaked = PRIVATE_JWK_MEMBERS & set(k)
        assert not leaked, f"JWKS publishes private key members {leaked}"
    rsa = [k for k in jwks["keys"]
           if k.get("kty") == "RSA" and k.get("alg") == "RS256" and k.get("use") == "sig"
           and k.get("n") and k.get("e")]
    assert rsa, f"no RS256 signing key in {jwks}"


def test_control_plane_jwks(server):
    r = server.req("GET", "/.well-known/jwks.json")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    check_jwks(r.json())


def test_jwks_uri_from_discovery(server, acme):
    doc = server.req("GET", "/.well-known/openid-configuration", tenant=acme).json()
    r = server.session.get(doc["jwks_uri"])
    assert r.status_code == 200, r.text
    check_jwks(r.json())


def test_each_tenant_has_its_own_signing_keys(server, acme):
    cp = server.req("GET", "/.well-known/jwks.json").json()
    child = server.req("GET", "/.well-known/jwks.json", tenant=acme).json()
    check_jwks(child)
    cp_n = {k.get("n") for k in cp["keys"]}
    child_n = {k.get("n") for k in child["keys"]}
    assert not cp_n & child_n, "the child tenant publishes the control plane's key"


def test_unknown_tenant_discovery_is_404(server):
    r = server.req("GET", "/.well-known/openid-configuration", tenant="nope-no-such-tenant")
    assert_error(r, 404)


def test_invalid_tenant_slug_is_400(server):
    r = server.req("GET", "/.well-known/openid-configuration", tenant="Bad_ID")
    assert_error(r, 400)
