"""Helpers that run the real `keystead` binary on 127.0.0.1 and talk to it over HTTP(S).

KEYSTEAD_BIN names the executable (scripts/test sets it to build/server/keystead).
Each server gets a fresh data dir under pytest's tmp dir, binds port 0 and announces its port on
stdout as `keystead listening on http://127.0.0.1:PORT`.
"""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest
import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

BOOTSTRAP_CLIENT_ID = "pytest-bootstrap-client"
BOOTSTRAP_CLIENT_SECRET = "pytest-bootstrap-secret-0123456789abcdef0123456789abcdef"
MGMT_AUDIENCE = "urn:keystead:management"
CONTROL_PLANE = "control_plane"
DEFAULT_CONNECTION = "Username-Password-Authentication"
REQUEST_TIMEOUT = 30
START_TIMEOUT = 30
STOP_TIMEOUT = 15

_LISTEN_RE = re.compile(r"keystead listening on (https?)://127\.0\.0\.1:(\d+)")
_DEFAULT = object()

# Every server the current test uses, so a failing test shows their logs (see conftest.py).
servers_in_test = []


def keystead_bin():
    path = os.environ.get("KEYSTEAD_BIN", "build/server/keystead")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        pytest.fail(f"KEYSTEAD_BIN={path} is not an executable; build first (scripts/test)")
    return path


def base_env(data_dir, extra=None):
    """The environment for a keystead process: ours minus any KEYSTEAD_*, plus test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
    env.update({
        "KEYSTEAD_DATA_DIR": str(data_dir),
        "KEYSTEAD_MODE": "dev",
        "KEYSTEAD_BOOTSTRAP_CLIENT_ID": BOOTSTRAP_CLIENT_ID,
        "KEYSTEAD_BOOTSTRAP_CLIENT_SECRET": BOOTSTRAP_CLIENT_SECRET,
        "KEYSTEAD_THREADS": "2",
    })
    env.update(extra or {})
    return env


def run_cli(data_dir, *args, env=None, timeout=60):
    """Runs `keystead ARGS...` on data_dir and returns the CompletedProcess (text)."""
    return subprocess.run([keystead_bin(), *args], env=base_env(data_dir, env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class TimeoutSession(requests.Session):
    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        # Explicit, so REQUESTS_CA_BUNDLE in the environment does not override session.verify.
        kwargs.setdefault("verify", self.verify)
        return super().request(*args, **kwargs)


class Server:
    """A running keystead process and helpers to call it."""

    def __init__(self, data_dir, log_dir, env=None, args=(), tls=False, name="keystead"):
        self.data_dir = str(data_dir)
        self.log_dir = str(log_dir)
        self.name = name
        self.tls = tls
        os.makedirs(self.data_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        self.stdout_path = os.path.join(self.log_dir, f"{name}.stdout")
        self.stderr_path = os.path.join(self.log_dir, f"{name}.stderr")
        self.http_port = None
        self.https_port = None
        self._tokens = {}
        self.session = TimeoutSession()
        self.session.verify = False

        cmd = [keystead_bin(), "serve", "--listen", "127.0.0.1:0"]
        if tls:
            cmd += ["--tls-listen", "127.0.0.1:0"]
        cmd += list(args)
        self._stdout_file = open(self.stdout_path, "ab")
        self._stderr_file = open(self.stderr_path, "ab")
        self._ports = {}
        self._ports_cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, env=base_env(self.data_dir, env),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr_file)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        servers_in_test.append(self)
        self._wait_ready(want_https=tls)

    # --- process -----------------------------------------------------------------------------

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self._stdout_file.write(raw)
            self._stdout_file.flush()
            m = _LISTEN_RE.search(raw.decode("utf-8", "replace"))
            if m:
                with self._ports_cond:
                    self._ports.setdefault(m.group(1), int(m.group(2)))
                    self._ports_cond.notify_all()
        with self._ports_cond:
            self._ports_cond.notify_all()

    def _wait_ready(self, want_https):
        deadline = time.monotonic() + START_TIMEOUT
        wanted = {"http"} | ({"https"} if want_https else set())
        with self._ports_cond:
            while not wanted <= set(self._ports):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self._ports_cond.wait(min(left, 0.2))
            ports = dict(self._ports)
        if not wanted <= set(ports):
            code = self.proc.poll()
            if code is None:
                self.kill()
            pytest.fail(f"{self.name} did not announce {sorted(wanted)} on stdout within "
                        f"{START_TIMEOUT}s (exit code {code})\n{self.logs()}")
        self.http_port = ports["http"]
        self.https_port = ports.get("https")

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits; returns the exit code (None if it did not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        self._reader.join(5)
        return self.proc.returncode

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit by itself; returns the exit code or None."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)

    def close_files(self):
        self.session.close()
        for f in (self._stdout_file, self._stderr_file):
            try:
                f.close()
            except OSError:
                pass

    def logs(self, tail=6000):
        out = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                text = ""
            if len(text) > tail:
                text = "...\n" + text[-tail:]
            out.append(f"--- {self.name} {label} ({path}) ---\n{text}")
        return "\n".join(out)

    # --- URLs --------------------------------------------------------------------------------

    @property
    def base(self):
        """http://127.0.0.1:PORT (no trailing slash)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def tls_base(self):
        return f"https://127.0.0.1:{self.https_port}"

    def url(self, path, tenant=None, https=False):
        prefix = f"/t/{tenant}" if tenant else ""
        return (self.tls_base if https else self.base) + prefix + path

    def issuer(self, tenant=None, https=False):
        return self.url("/", tenant, https)

    # --- OAuth -------------------------------------------------------------------------------

    def token_request(self, tenant=None, https=False, auth=None, **form):
        """POST /oauth/token with a form body; returns the Response."""
        return self.session.post(self.url("/oauth/token", tenant, https), data=form, auth=auth)

    def client_credentials(self, client_id, client_secret, audience=MGMT_AUDIENCE, tenant=None,
                           https=False):
        """client_secret_post; returns the Response."""
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": client_secret}
        if audience is not None:
            form["audience"] = audience
        return self.token_request(tenant, https, **form)

    def mgmt_token(self, tenant=None, client_id=BOOTSTRAP_CLIENT_ID,
                   client_secret=BOOTSTRAP_CLIENT_SECRET, https=False):
        """An access token for the Management API (cached); the bootstrap client by default."""
        key = (tenant, client_id, client_secret, https)
        if key not in self._tokens:
            r = self.client_credentials(client_id, client_secret, MGMT_AUDIENCE, tenant, https)
            assert r.status_code == 200, f"token request failed: {r.status_code} {r.text}"
            self._tokens[key] = r.json()["access_token"]
        return self._tokens[key]

    # --- Management API ----------------------------------------------------------------------

    def req(self, method, path, tenant=None, https=False, token=None, **kw):
        """Any request; path is below the tenant prefix (/t/{tenant}) when tenant is given."""
        headers = dict(kw.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url(path, tenant, https), headers=headers, **kw)

    def api(self, method, path, tenant=None, token=_DEFAULT, https=False, **kw):
        """A Management API v2 call: path is below /api/v2 (e.g. "/users"). The bootstrap client's
        token is sent unless token is given (None sends no Authorization header)."""
        if token is _DEFAULT:
            token = self.mgmt_token(https=https)
        return self.req(method, "/api/v2" + path, tenant, https, token, **kw)


def session_server(tmp_path_factory, name):
    """Generator body of a session-scoped server fixture: starts a server on a fresh data dir,
    yields it, and at the end asserts it stopped cleanly on SIGTERM."""
    root = tmp_path_factory.mktemp("keystead")
    srv = Server(root / "data", root / "logs", name=name)
    yield srv
    servers_in_test[:] = [srv]
    code = srv.stop()
    srv.close_files()
    if code is None:
        srv.kill()
    assert code == 0, f"{name} did not exit 0 within {STOP_TIMEOUT}s of SIGTERM " \
                      f"(exit code {code})\n{srv.logs()}"


def attach_server_logs(rep):
    """Adds the logs of the servers the test used to a failed test's report."""
    if rep.failed:
        for srv in list(servers_in_test):
            rep.sections.append((f"{srv.name} logs", srv.logs()))


def quote(segment):
    """Percent-encodes one path segment (user ids contain '|')."""
    return urllib.parse.quote(segment, safe="")


def unique_id(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_error(resp, status):
    """The Auth0 Management API error shape: {statusCode, error, message, errorCode?}."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), \
        f"error is not JSON: {resp.headers.get('Content-Type')!r} {resp.text!r}"
    body = resp.json()
    assert isinstance(body, dict), body
    assert body.get("statusCode") == status, body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if "errorCode" in body:
        assert isinstance(body["errorCode"], str), body
    return body


def assert_oauth_error(resp, status, error):
    """RFC 6749 error JSON."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    body = resp.json()
    assert body.get("error") == error, body
    if "error_description" in body:
        assert isinstance(body["error_description"], str)
    return body
