"""Connection handling of the server: keep-alive, pipelining, slow clients, graceful shutdown."""
import http.client
import signal
import socket
import subprocess
import threading
import time

from kshttp import (BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET, MGMT_AUDIENCE, base_env,
                    keystead_bin)
from rawhttp import Reader, connect


def test_keep_alive_reuses_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        sock = conn.sock
        assert sock is not None, "the server closed a keep-alive connection"
        for i in range(30):
            path = ["/healthz", "/.well-known/openid-configuration", "/.well-known/jwks.json"][i % 3]
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            assert r.status == 200, (path, r.status)
            assert conn.sock is sock, f"request {i} needed a new connection"
        body = (f"grant_type=client_credentials&client_id={BOOTSTRAP_CLIENT_ID}"
                f"&client_secret={BOOTSTRAP_CLIENT_SECRET}&audience={MGMT_AUDIENCE}")
        conn.request("POST", "/oauth/token", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        assert r.status == 200 and conn.sock is sock
    finally:
        conn.close()


def test_keep_alive_with_requests_session(server):
    for _ in range(50):
        assert server.session.get(server.url("/healthz")).status_code == 200


def test_connection_close_is_honoured(server):
    s = connect(server.http_port)
    try:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
                  "Connection: close\r\n\r\n".encode())
        reader = Reader(s)
        resp = reader.response()
        assert resp.status == 200
        assert reader.rest() == b"", "data after the response"
    finally:
        s.close()


def test_http_1_0(server):
    s = connect(server.http_port)
    try:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        resp = Reader(s).response()
        assert resp.status == 200
    finally:
        s.close()


def test_pipelined_requests_answer_in_order(server):
    host = f"127.0.0.1:{server.http_port}"
    reqs = (f"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {host}\r\n\r\n"
            f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n"
            f"GET /no/such/route HTTP/1.1\r\nHost: {host}\r\n\r\n"
            f"GET /.well-known/jwks.json HTTP/1.1\r\nHost: {host}\r\n\r\n").encode()
    s = connect(server.http_port)
    try:
        s.sendall(reqs)
        reader = Reader(s)
        first = reader.response()
        assert first.status == 200 and b'"issuer"' in first.body, first
        second = reader.response()
        assert second.status == 200, second
        third = reader.response()
        assert third.status == 404, third
        fourth = reader.response()
        assert fourth.status == 200 and b'"keys"' in fourth.body, fourth
    finally:
        s.close()


def test_pipelined_post_bodies(server):
    host = f"127.0.0.1:{server.http_port}"
    good = (f"grant_type=client_credentials&client_id={BOOTSTRAP_CLIENT_ID}"
            f"&client_secret={BOOTSTRAP_CLIENT_SECRET}&audience={MGMT_AUDIENCE}")
    bad = f"grant_type=client_credentials&client_id={BOOTSTRAP_CLIENT_ID}&client_secret=nope" \
          f"&audience={MGMT_AUDIENCE}"
    data = b""
    for body in (good, bad, good):
        data += (f"POST /oauth/token HTTP/1.1\r\nHost: {host}\r\n"
                 f"Content-Type: application/x-www-form-urlencoded\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    s = connect(server.http_port)
    try:
        s.sendall(data)
        reader = Reader(s)
        assert [reader.response().status for _ in range(3)] == [200, 401, 200]
    finally:
        s.close()


def test_request_split_across_packets(server):
    s = connect(server.http_port)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n\r\n".encode()
        for i in range(len(raw)):
            s.sendall(raw[i:i + 1])
            if i % 8 == 0:
                time.sleep(0.005)
        assert Reader(s).response().status == 200
    finally:
        s.close()


def test_concurrent_clients(server):
    errors = []

    def worker():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=20)
            for _ in range(20):
                conn.request("GET", "/.well-known/openid-configuration")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
            conn.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_slowloris_gets_408_or_closed(start_server):
    srv = start_server(env={"KEYSTEAD_HEADER_TIMEOUT_MS": "500"})
    s = connect(srv.http_port, timeout=10)
    try:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.http_port}\r\nX-Slow: ".encode())
        try:
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            raise AssertionError("the server kept a half-sent request open for 10 s") from None
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
    finally:
        s.close()
    # The server is fine afterwards.
    assert srv.session.get(srv.url("/healthz")).status_code == 200


def test_slow_body_gets_408_or_closed(start_server):
    srv = start_server(env={"KEYSTEAD_HEADER_TIMEOUT_MS": "500", "KEYSTEAD_IDLE_TIMEOUT_MS": "1000"})
    s = connect(srv.http_port, timeout=15)
    try:
        s.sendall(f"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1:{srv.http_port}\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\n"
                  "Content-Length: 100\r\n\r\ngrant_type=".encode())
        try:
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            raise AssertionError("the server kept a half-sent body open for 15 s") from None
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
    finally:
        s.close()


def test_idle_keep_alive_connection_is_closed(start_server):
    srv = start_server(env={"KEYSTEAD_IDLE_TIMEOUT_MS": "500"})
    s = connect(srv.http_port, timeout=10)
    try:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.http_port}\r\n\r\n".encode())
        reader = Reader(s)
        assert reader.response().status == 200
        try:
            assert reader.rest() == b""
        except socket.timeout:
            raise AssertionError("an idle keep-alive connection stayed open for 10 s") from None
        except ConnectionResetError:
            pass
    finally:
        s.close()


def test_sigterm_drains_and_exits_0(start_server):
    srv = start_server()
    # An idle keep-alive connection and one with a request half sent must not hold shutdown up.
    idle = connect(srv.http_port)
    idle.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.http_port}\r\n\r\n".encode())
    assert Reader(idle).response().status == 200
    partial = connect(srv.http_port)
    partial.sendall(b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()
    try:
        code = srv.stop(signal.SIGTERM, timeout=15)
    finally:
        idle.close()
        partial.close()
    assert code == 0, f"exit code {code} after SIGTERM ({time.monotonic() - started:.1f}s)"


def test_sigint_exits_0(start_server):
    srv = start_server()
    assert srv.session.get(srv.url("/healthz")).status_code == 200
    assert srv.stop(signal.SIGINT, timeout=15) == 0


def test_sigterm_finishes_requests_in_flight(start_server):
    """Requests sent just before SIGTERM get complete responses."""
    srv = start_server()
    results = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=20)
        try:
            body = (f"grant_type=client_credentials&client_id={BOOTSTRAP_CLIENT_ID}"
                    f"&client_secret={BOOTSTRAP_CLIENT_SECRET}&audience={MGMT_AUDIENCE}")
            conn.request("POST", "/oauth/token", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            r = conn.getresponse()
            results.append((r.status, len(r.read())))
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            results.append(("refused", repr(e)))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    srv.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(30)
    code = srv.wait(15)
    assert code == 0, f"exit code {code} after SIGTERM"
    # A request either completed with a whole response or was never accepted; none got a
    # truncated response.
    for status, detail in results:
        if status != "refused":
            assert status == 200 and detail > 0, results


def test_port_in_use_fails_to_start(start_server, tmp_path):
    """A second server on a port another server already listens on must fail to start, not
    share the port (SO_REUSEPORT across processes would split requests between two servers)."""
    first = start_server()
    proc = subprocess.Popen(
        [keystead_bin(), "serve", "--listen", f"127.0.0.1:{first.http_port}"],
        env=base_env(tmp_path / "second"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"a second server started on busy port {first.http_port}: {out!r}") from None
    assert proc.returncode != 0, out
    assert b"listening" not in out, out
    assert err.strip(), "the failure should be explained on stderr"
    assert first.session.get(first.url("/healthz")).status_code == 200
