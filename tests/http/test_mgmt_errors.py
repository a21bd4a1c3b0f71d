"""Management API authorization and bad input: every failure is an Auth0-shaped error, writes
nothing, and leaves the server serving."""
import socket

import pytest

from jwtutil import decode, encode_unsigned
from kshttp import DEFAULT_CONNECTION, MGMT_AUDIENCE, assert_error, unique_id
from rawhttp import Reader, connect

PASSWORD = "Correct-Horse-9-battery"


def user_total(server, tenant):
    r = server.api("GET", "/users", tenant=tenant, params={"include_totals": "true"})
    assert r.status_code == 200, r.text
    return r.json()["total"]


def valid_user(email=None):
    return {"email": email or f"{unique_id('e')}@example.com", "password": PASSWORD,
            "connection": DEFAULT_CONNECTION}


@pytest.fixture
def tenant(new_tenant):
    return new_tenant()


@pytest.fixture(autouse=True)
def still_healthy(server):
    yield
    r = server.req("GET", "/healthz")
    assert r.status_code == 200, "the server stopped answering /healthz"


# --- authentication ----------------------------------------------------------------------------

def test_no_token_is_401(server, tenant):
    assert_error(server.api("GET", "/tenants", token=None), 401)
    assert_error(server.api("POST", "/users", tenant=tenant, token=None, json=valid_user()), 401)
    assert user_total(server, tenant) == 0


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Bearer ", "Basic Zm9vOmJhcg==",
                                    "Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA"])
def test_garbage_token_is_401(server, tenant, header):
    r = server.req("POST", "/api/v2/users", tenant=tenant, headers={"Authorization": header},
                   json=valid_user())
    assert_error(r, 401)
    assert user_total(server, tenant) == 0


def test_alg_none_token_is_401(server, tenant):
    header, claims, _, _ = decode(server.mgmt_token())
    forged = encode_unsigned({"alg": "none", "typ": header.get("typ", "at+jwt")}, claims)
    assert_error(server.api("GET", "/tenants", token=forged), 401)
    forged_kid = encode_unsigned({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}, claims)
    assert_error(server.api("POST", "/users", tenant=tenant, token=forged_kid,
                            json=valid_user()), 401)
    assert user_total(server, tenant) == 0


def test_hs256_with_public_key_confusion_is_401(server):
    header, claims, _, _ = decode(server.mgmt_token())
    forged = encode_unsigned({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}, claims,
                             b"\x00" * 32)
    assert_error(server.api("GET", "/tenants", token=forged), 401)


def test_tampered_token_is_401(server, tenant):
    token = server.mgmt_token()
    header, claims, _, signature = decode(token)
    claims["scope"] = claims["scope"] + " extra:scope"
    claims["exp"] = claims["exp"] + 3600
    forged = encode_unsigned(header, claims, signature)
    assert_error(server.api("POST", "/users", tenant=tenant, token=forged, json=valid_user()), 401)
    assert user_total(server, tenant) == 0


def test_token_for_another_audience_is_rejected(server, tenant):
    """A valid token of the tenant, but for another API, is not a management token."""
    r = server.api("POST", "/resource-servers", tenant=tenant, json={
        "name": "Other", "identifier": "https://other-api.test", "scopes": [{"value": "read:users"}]})
    assert r.status_code == 201, r.text
    c = server.api("POST", "/clients", tenant=tenant,
                   json={"name": "c", "app_type": "non_interactive"}).json()
    assert server.api("POST", "/client-grants", tenant=tenant, json={
        "client_id": c["client_id"], "audience": "https://other-api.test",
        "scope": ["read:users"]}).status_code == 201
    tok = server.client_credentials(c["client_id"], c["client_secret"], "https://other-api.test",
                                    tenant=tenant).json()["access_token"]
    r = server.api("GET", "/users", tenant=tenant, token=tok)
    assert r.status_code in (401, 403), r.text
    assert_error(r, r.status_code)


# --- authorization across tenants --------------------------------------------------------------

@pytest.fixture(scope="module")
def acme_reader(server, acme):
    """A client of acme granted only read:users on acme's management API, and its token."""
    r = server.api("POST", "/clients", tenant=acme,
                   json={"name": unique_id("reader"), "app_type": "non_interactive"})
    assert r.status_code == 201, r.text
    client = r.json()
    r = server.api("POST", "/client-grants", tenant=acme, json={
        "client_id": client["client_id"], "audience": MGMT_AUDIENCE, "scope": ["read:users"]})
    assert r.status_code == 201, r.text
    r = server.client_credentials(client["client_id"], client["client_secret"], MGMT_AUDIENCE,
                                  tenant=acme)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    claims = decode(token)[1]
    assert claims["tenant_id"] == acme and claims["iss"] == server.issuer(acme)
    assert claims["scope"].split() == ["read:users"]
    return token


def test_tenant_token_works_on_its_own_tenant(server, acme, acme_reader):
    r = server.api("GET", "/users", tenant=acme, token=acme_reader)
    assert r.status_code == 200, r.text


def test_tenant_token_needs_the_route_scope(server, acme, acme_reader):
    before = user_total(server, acme)
    assert_error(server.api("GET", "/clients", tenant=acme, token=acme_reader), 403)
    assert_error(server.api("POST", "/users", tenant=acme, token=acme_reader,
                            json=valid_user()), 403)
    assert user_total(server, acme) == before


def test_tenant_token_never_acts_on_another_tenant(server, acme_reader, tenant):
    assert_error(server.api("GET", "/users", tenant=tenant, token=acme_reader), 403)
    assert_error(server.api("POST", "/users", tenant=tenant, token=acme_reader,
                            json=valid_user()), 403)
    assert user_total(server, tenant) == 0


def test_tenant_token_cannot_use_the_control_plane(server, acme_reader):
    assert_error(server.api("GET", "/tenants", token=acme_reader), 403)
    assert_error(server.api("GET", "/users", token=acme_reader), 403)
    name = unique_id("x")
    assert_error(server.api("POST", "/tenants", token=acme_reader,
                            json={"id": name, "friendly_name": "x"}), 403)
    assert_error(server.api("GET", f"/tenants/{name}"), 404)


def test_tenant_token_on_its_tenant_via_header_resolution(server, acme, acme_reader):
    r = server.req("GET", "/api/v2/users", token=acme_reader, headers={"x-tenant-id": acme})
    assert r.status_code == 200, r.text
    r = server.req("GET", "/api/v2/users", token=acme_reader, headers={"tenant-id": acme})
    assert r.status_code == 200, r.text


# --- bad input ---------------------------------------------------------------------------------

def post_raw(server, tenant, body, content_type="application/json"):
    return server.req("POST", "/api/v2/users", tenant=tenant, token=server.mgmt_token(),
                      data=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize("body", [b'{"email":', b"not json", b"[1,2,3]", b'"a string"', b"",
                                  b'{"email": "a@b.test",}'])
def test_malformed_json_is_400(server, tenant, body):
    assert_error(post_raw(server, tenant, body), 400)
    assert user_total(server, tenant) == 0


@pytest.mark.parametrize("field,value", [("email", 123), ("password", ["x"]),
                                         ("connection", None), ("user_metadata", "text"),
                                         ("email_verified", "yes"), ("name", {"a": 1})])
def test_wrong_field_type_is_400(server, tenant, field, value):
    body = valid_user()
    body[field] = value
    r = server.api("POST", "/users", tenant=tenant, json=body)
    err = assert_error(r, 400)
    assert field in err["message"], f"the message should name the field {field}: {err}"
    assert user_total(server, tenant) == 0


def test_unknown_field_is_400(server, tenant):
    body = valid_user()
    body["bogus_field"] = 1
    err = assert_error(server.api("POST", "/users", tenant=tenant, json=body), 400)
    assert "bogus_field" in err["message"], err
    assert user_total(server, tenant) == 0


def test_missing_required_field_is_400(server, tenant):
    body = valid_user()
    del body["connection"]
    assert_error(server.api("POST", "/users", tenant=tenant, json=body), 400)
    assert user_total(server, tenant) == 0


def test_invalid_email_is_400(server, tenant):
    assert_error(server.api("POST", "/users", tenant=tenant,
                            json=valid_user("not-an-email")), 400)
    assert user_total(server, tenant) == 0


def test_weak_password_is_400(server, tenant):
    body = valid_user()
    body["password"] = "abc"
    assert_error(server.api("POST", "/users", tenant=tenant, json=body), 400)
    assert user_total(server, tenant) == 0


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_invalid_utf8_is_400(server, tenant, bad):
    body = b'{"email":"x' + bad + b'@example.com","password":"' + PASSWORD.encode() + \
        b'","connection":"' + DEFAULT_CONNECTION.encode() + b'"}'
    assert_error(post_raw(server, tenant, body), 400)
    assert user_total(server, tenant) == 0


def test_invalid_utf8_in_tenant_name_is_400(server):
    before = server.api("GET", "/tenants", params={"include_totals": "true"}).json()["total"]
    r = server.req("POST", "/api/v2/tenants", token=server.mgmt_token(),
                   data=b'{"id":"' + unique_id().encode() + b'","friendly_name":"\xff"}',
                   headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    after = server.api("GET", "/tenants", params={"include_totals": "true"}).json()["total"]
    assert after == before


def test_patch_with_wrong_type_changes_nothing(server, acme):
    r = server.api("POST", "/users", tenant=acme, json=valid_user())
    uid = r.json()["user_id"]
    path = "/users/" + uid.replace("|", "%7C")
    assert_error(server.api("PATCH", path, tenant=acme, json={"name": "ok", "blocked": "no"}), 400)
    assert server.api("GET", path, tenant=acme).json().get("name") != "ok"


def test_unknown_route_is_404_json(server, acme):
    assert_error(server.api("GET", "/no-such-collection"), 404)
    assert_error(server.req("GET", "/no/such/path"), 404)
    assert_error(server.req("GET", "/t/acme/no/such/path"), 404)


def test_wrong_method_is_405_or_404(server):
    r = server.api("PUT", "/tenants")
    assert r.status_code in (404, 405), r.text
    assert_error(r, r.status_code)


def test_unknown_tenant_is_404(server):
    assert_error(server.api("GET", "/users", tenant="nope-no-such-tenant"), 404)
    assert_error(server.api("POST", "/users", tenant="nope-no-such-tenant",
                            json=valid_user()), 404)


@pytest.mark.parametrize("slug", ["Bad_ID", "bad!id", "-x", "a" * 64, "%2e%2e"])
def test_invalid_tenant_slug_is_400(server, slug):
    assert_error(server.api("GET", "/users", tenant=slug), 400)


def test_unknown_entity_is_404(server, acme):
    assert_error(server.api("GET", "/users/auth0%7C" + "0" * 24, tenant=acme), 404)
    assert_error(server.api("GET", "/clients/" + "x" * 32, tenant=acme), 404)
    assert_error(server.api("GET", "/roles/rol_doesnotexist", tenant=acme), 404)
    assert_error(server.api("DELETE", "/roles/rol_doesnotexist", tenant=acme), 404)
    assert_error(server.api("GET", "/organizations/org_doesnotexist", tenant=acme), 404)
    assert_error(server.api("GET", "/tenants/no-such-tenant"), 404)


def test_bad_pagination_is_400(server, acme):
    assert_error(server.api("GET", "/users", tenant=acme, params={"per_page": "lots"}), 400)
    assert_error(server.api("GET", "/users", tenant=acme, params={"page": "-1"}), 400)


# --- size limits -------------------------------------------------------------------------------

def raw_exchange(server, head, body=b"", timeout=15):
    """Sends a request on a raw socket (tolerating the server closing early) and reads the
    response."""
    s = connect(server.http_port, timeout)
    try:
        try:
            s.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        return Reader(s).response()
    finally:
        s.close()


def test_body_over_1mib_is_413(server, tenant):
    token = server.mgmt_token()
    payload = b'{"email":"big@example.com","password":"' + PASSWORD.encode() + \
        b'","connection":"' + DEFAULT_CONNECTION.encode() + b'","name":"' + \
        b"a" * (1024 * 1024) + b'"}'
    head = (f"POST /t/{tenant}/api/v2/users HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()
    resp = raw_exchange(server, head, payload)
    assert resp.status == 413, resp
    assert b'"statusCode":413' in resp.body.replace(b" ", b""), resp
    assert user_total(server, tenant) == 0


def test_declared_content_length_over_limit_is_413(server, tenant):
    head = (f"POST /t/{tenant}/api/v2/users HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
            f"Authorization: Bearer {server.mgmt_token()}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n").encode()
    resp = raw_exchange(server, head)
    assert resp.status == 413, resp


def test_chunked_body_over_limit_is_413(server, tenant):
    head = (f"POST /t/{tenant}/api/v2/users HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
            f"Authorization: Bearer {server.mgmt_token()}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"a" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 20 + b"0\r\n\r\n"
    resp = raw_exchange(server, head, body)
    assert resp.status == 413, resp
    assert user_total(server, tenant) == 0


def test_header_over_limit_is_431(server):
    r = server.req("GET", "/healthz", headers={"X-Big": "a" * (20 * 1024)})
    assert r.status_code == 431, r.text


def test_header_flood_is_431(server):
    headers = "".join(f"X-Flood-{i}: {'v' * 20}\r\n" for i in range(2000))
    head = (f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n{headers}\r\n").encode()
    resp = raw_exchange(server, head)
    assert resp.status == 431, resp


def test_long_request_line_is_rejected(server):
    head = (f"GET /healthz?{'q' * 40000} HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n\r\n"
            ).encode()
    resp = raw_exchange(server, head)
    assert resp.status in (414, 431), resp


def test_garbage_request_is_400(server):
    resp = raw_exchange(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
    assert resp.status == 400, resp


def test_bad_content_length_is_400(server):
    head = (f"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
            "Content-Length: abc\r\n\r\n").encode()
    resp = raw_exchange(server, head)
    assert resp.status == 400, resp
