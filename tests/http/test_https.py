"""HTTPS with the dev-mode self-signed certificate."""
import pathlib
import socket
import ssl

import pytest

from jwtutil import verify_rs256
from kshttp import BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET, unique_id

# The dev certificate is self-signed; most requests here skip verification on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def tls_server(start_server):
    return start_server(tls=True, name="tls-server")


def dev_certificate(data_dir):
    for path in sorted(pathlib.Path(data_dir).rglob("*")):
        if path.is_file() and path.suffix in (".pem", ".crt"):
            text = path.read_text(errors="replace")
            if "BEGIN CERTIFICATE" in text and "PRIVATE KEY" not in text:
                return path
    return None


def test_https_discovery_and_issuer(tls_server):
    r = tls_server.session.get(tls_server.url("/.well-known/openid-configuration", https=True))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["issuer"] == f"https://127.0.0.1:{tls_server.https_port}/"
    assert doc["token_endpoint"].startswith("https://127.0.0.1:")
    assert doc["jwks_uri"].startswith("https://127.0.0.1:")
    assert tls_server.session.get(tls_server.url("/healthz", https=True)).status_code == 200


def test_plain_http_listener_still_serves(tls_server):
    r = tls_server.session.get(tls_server.url("/.well-known/openid-configuration"))
    assert r.status_code == 200, r.text
    assert r.json()["issuer"] == f"http://127.0.0.1:{tls_server.http_port}/"


def test_dev_certificate_is_written_and_verifies(tls_server):
    cert = dev_certificate(tls_server.data_dir)
    assert cert is not None, f"no self-signed certificate under {tls_server.data_dir}"
    r = tls_server.session.get(tls_server.url("/healthz", https=True), verify=str(cert))
    assert r.status_code == 200
    # The certificate names localhost too.
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", tls_server.https_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert s.recv(12).startswith(b"HTTP/1.1 200")


def test_token_and_tenant_over_https(tls_server):
    r = tls_server.client_credentials(BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET, https=True)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    jwks = tls_server.session.get(tls_server.url("/.well-known/jwks.json", https=True)).json()
    _, claims = verify_rs256(token, jwks)
    assert claims["iss"] == f"https://127.0.0.1:{tls_server.https_port}/"

    tid = unique_id("tls")
    r = tls_server.api("POST", "/tenants", https=True, token=token,
                       json={"id": tid, "friendly_name": "Over TLS"})
    assert r.status_code == 201, r.text
    r = tls_server.req("GET", "/.well-known/openid-configuration", tenant=tid, https=True)
    assert r.status_code == 200, r.text
    assert r.json()["issuer"] == f"https://127.0.0.1:{tls_server.https_port}/t/{tid}/"
    r = tls_server.api("GET", "/users", tenant=tid, https=True, token=token)
    assert r.status_code == 200 and r.json() == [], r.text


def test_plaintext_on_tls_port_does_not_hurt(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.https_port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            s.recv(1024)
        except (ConnectionResetError, socket.timeout):
            pass
    r = tls_server.session.get(tls_server.url("/healthz", https=True))
    assert r.status_code == 200


def test_tls_keep_alive(tls_server):
    for _ in range(20):
        r = tls_server.session.get(tls_server.url("/healthz", https=True))
        assert r.status_code == 200
