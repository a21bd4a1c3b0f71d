"""KeysteadWSGI and Dispatcher: in-process with hand-made environs, and over real HTTP with
wsgiref on 127.0.0.1."""
import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from keystead import Dispatcher, Engine, KeysteadWSGI, Response

from conftest import (API, DB, PASSWORD, Machine, call, free_port, settings, unique,
                      users_reader_token)


def form(**fields: str) -> tuple[bytes, dict]:
    return (urllib.parse.urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})


def test_discovery_and_jwks_in_process(engine: Engine, tenant: str):
    app = KeysteadWSGI(engine)
    status, headers, body = call(app, "GET", "/.well-known/openid-configuration")
    assert status == "200 OK" and ("content-type", "application/json") in headers
    disc = json.loads(body)
    assert disc["issuer"] == "http://127.0.0.1:8080/"
    assert disc["jwks_uri"] == "http://127.0.0.1:8080/.well-known/jwks.json"
    status, _, body = call(app, "GET", f"/t/{tenant}/.well-known/openid-configuration")
    assert json.loads(body)["issuer"] == f"http://127.0.0.1:8080/t/{tenant}/"
    status, _, body = call(app, "GET", "/.well-known/jwks.json")
    keys = json.loads(body)["keys"]
    assert status == "200 OK" and keys and all(k["kty"] == "RSA" and k["kid"] for k in keys)
    status, _, _ = call(app, "GET", "/t/no-such-tenant/.well-known/jwks.json")
    assert status == "404 Not Found"


def test_a_token_request_in_process(engine: Engine, machine: Machine):
    body, headers = form(grant_type="client_credentials", client_id=machine.client_id,
                         client_secret=machine.secret, audience=API)
    status, _, answer = call(KeysteadWSGI(engine), "POST", "/oauth/token", body=body,
                             headers=headers)
    assert status == "200 OK", answer
    token = json.loads(answer)["access_token"]
    assert engine.tokens.verify(token, audience=API)["sub"] == machine.client_id + "@clients"
    body, headers = form(grant_type="client_credentials", client_id=machine.client_id,
                         client_secret="wrong", audience=API)
    status, _, answer = call(KeysteadWSGI(engine), "POST", "/oauth/token", body=body,
                             headers=headers)
    assert status == "401 Unauthorized" and json.loads(answer)["error"] == "invalid_client"


def test_the_path_is_quoted_again(engine: Engine):
    """A server decodes PATH_INFO; a user id's '|' must reach Keystead percent-encoded."""
    token = users_reader_token(engine)
    user = engine.users.create(connection=DB, email=f"{unique('q')}@example.com",
                               password=PASSWORD)
    status, _, body = call(KeysteadWSGI(engine), "GET", "/api/v2/users/" + user["user_id"],
                           headers={"Authorization": "Bearer " + token})
    assert status == "200 OK", body
    assert json.loads(body)["email"] == user["email"]


def test_request_body_limits(engine: Engine):
    app = KeysteadWSGI(engine, max_body_bytes=10)
    status, _, body = call(app, "POST", "/oauth/token", body=b"x" * 11)
    assert status == "413 Request Entity Too Large"
    assert json.loads(body)["error"] == "invalid_request"
    status, _, body = call(KeysteadWSGI(engine), "POST", "/oauth/token", body=b"\xff\xfe",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == "400 Bad Request" and "UTF-8" in json.loads(body)["error_description"]


class TwoCookies:
    """An engine stand-in answering with two Set-Cookie headers and a hop-by-hop one, and
    recording the request it got."""

    def __init__(self) -> None:
        self.requests: list[dict] = []

    def handle(self, method: str, path: str, **kw: Any) -> Response:
        self.requests.append({"method": method, "path": path, **kw})
        return Response(200, [("set-cookie", "a=1; Path=/"), ("set-cookie", "b=2; Path=/"),
                              ("connection", "close"), ("content-type", "text/plain")], b"ok")


def test_every_set_cookie_survives(serve):
    stub = TwoCookies()
    app = KeysteadWSGI(stub)  # type: ignore[arg-type]
    _, headers, _ = call(app, "GET", "/x")
    assert [v for k, v in headers if k == "set-cookie"] == ["a=1; Path=/", "b=2; Path=/"]
    assert all(k != "connection" for k, _ in headers)
    base = serve(app)
    conn = http.client.HTTPConnection(base[len("http://"):], timeout=10)
    conn.request("POST", "/t/acme/u/login?state=abc%20d", body=b"a=1",
                 headers={"Content-Type": "application/x-www-form-urlencoded",
                          "X-Custom": "v"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"ok"
    assert resp.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    conn.close()
    got = stub.requests[-1]
    assert (got["method"], got["path"], got["query"]) == ("POST", "/t/acme/u/login",
                                                          "state=abc%20d")
    assert got["body"] == b"a=1" and got["remote_addr"] == "127.0.0.1" and not got["secure"]
    headers = dict(got["headers"])
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["content-length"] == "3" and headers["x-custom"] == "v"
    assert headers["host"] == base[len("http://"):]


def test_https_is_secure(engine: Engine):
    stub = TwoCookies()
    call(KeysteadWSGI(stub), "GET", "/", **{"wsgi.url_scheme": "https"})  # type: ignore[arg-type]
    assert stub.requests[-1]["secure"] is True


def test_over_real_http(tmp_path, serve):
    """Discovery, JWKS and a token request through wsgiref, with the issuer of the address."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Engine(settings(tmp_path, public_url=base)) as engine:
        serve(KeysteadWSGI(engine), port)
        with urllib.request.urlopen(base + "/.well-known/openid-configuration", timeout=10) as r:
            disc = json.load(r)
        assert disc["issuer"] == base + "/" and disc["token_endpoint"] == base + "/oauth/token"
        with urllib.request.urlopen(disc["jwks_uri"], timeout=10) as r:
            kids = {k["kid"] for k in json.load(r)["keys"]}
        engine.resource_servers.create(name="Orders", identifier=API,
                                       scopes=[{"value": "read:orders"}])
        m2m = Machine(engine, None, ("read:orders",))
        body, headers = form(grant_type="client_credentials", client_id=m2m.client_id,
                             client_secret=m2m.secret, audience=API)
        req = urllib.request.Request(disc["token_endpoint"], data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.load(r)["access_token"]
        header = json.loads(_b64(token.split(".")[0]))
        assert header["kid"] in kids
        claims = engine.tokens.verify(token, audience=API)
        assert claims["iss"] == base + "/" and claims["scope"] == "read:orders"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/t/no-such-tenant/.well-known/jwks.json", timeout=10)
        assert e.value.code == 404


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def host_app(environ: dict, start_response: Any) -> list[bytes]:
    body = json.dumps({"script_name": environ["SCRIPT_NAME"],
                       "path_info": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_dispatcher_routes_prefixes_to_the_host(engine: Engine):
    app = Dispatcher(engine, {"/portal": host_app, "/portal/admin/": host_app})
    for path, script, rest in (("/portal", "/portal", ""), ("/portal/users", "/portal", "/users"),
                               ("/portal/admin/x", "/portal/admin", "/x")):
        status, _, body = call(app, "GET", path)
        assert status == "200 OK"
        assert json.loads(body) == {"script_name": script, "path_info": rest}
    status, _, body = call(app, "GET", "/.well-known/openid-configuration")
    assert json.loads(body)["issuer"] == "http://127.0.0.1:8080/"
    status, _, _ = call(app, "GET", "/portalx")  # not below /portal: Keystead's 404
    assert status == "404 Not Found"
    with pytest.raises(ValueError):
        Dispatcher(engine, {"portal": host_app})
