"""Email flows against the real server binary and a real SMTP server (aiosmtpd) on loopback:
the control plane's provider is configured as SMTP through the Management API, the forgot-password
flow runs over HTTP, the message arrives on the SMTP server and its link completes the reset."""
import email
import email.policy
import json
import os
import re
import socket
import threading
import time
import urllib.parse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kshttp import DEFAULT_CONNECTION, quote

# The loopback SMTP server takes AUTH without TLS on purpose (tls "none"); no need to warn.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SMTP_USER = "keystead"
SMTP_PASS = "smtp-secret-pass-0451"
CALLBACK = "https://app.test/cb"
WAIT = 20


class Inbox:
    """An aiosmtpd handler that keeps every accepted message."""

    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.cond:
            self.messages.append(envelope)
            self.cond.notify_all()
        return "250 Message accepted for delivery"

    def wait(self, count, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.messages)


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASS.encode())
    return AuthResult(success=ok, handled=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 that requires AUTH (PLAIN/LOGIN, no TLS)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=authenticate, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


# --- helpers ------------------------------------------------------------------------------------

def input_value(html, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), html)
    assert m, f"no {name} in page:\n{html}"
    return m.group(1)


def make_app(srv):
    r = srv.api("POST", "/clients", json={
        "name": "Email test app", "app_type": "spa", "callbacks": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"]})
    assert r.status_code == 201, r.text
    return r.json()["client_id"]


def make_user(srv, email_addr, password):
    r = srv.api("POST", "/users", json={"email": email_addr, "password": password,
                                        "connection": DEFAULT_CONNECTION})
    assert r.status_code == 201, r.text
    return r.json()["user_id"]


def login_page(srv, client_id):
    """Starts /authorize (PKCE) and returns the hosted login page's HTML."""
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
              "scope": "openid email", "state": "xyz", "prompt": "login",
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
              "code_challenge_method": "S256"}
    r = srv.session.get(srv.url("/authorize"), params=params, allow_redirects=False)
    assert r.status_code == 302, r.text
    page = srv.session.get(r.headers["Location"], allow_redirects=False)
    assert page.status_code == 200, page.text
    return page.text


def log_in(srv, client_id, email_addr, password):
    html = login_page(srv, client_id)
    return srv.session.post(srv.url("/u/login"), data={
        "state": input_value(html, "state"), "_csrf": input_value(html, "_csrf"),
        "username": email_addr, "password": password}, allow_redirects=False)


def ask_for_reset(srv, client_id, email_addr):
    """Follows the login page's "Forgot password?" link and submits the email."""
    html = login_page(srv, client_id)
    m = re.search(r'href="([^"]*/u/reset-password\?state=[^"]+)"', html)
    assert m, f"no Forgot password link:\n{html}"
    form = srv.session.get(m.group(1), allow_redirects=False)
    assert form.status_code == 200, form.text
    r = srv.session.post(srv.url("/u/reset-password"), data={
        "state": input_value(form.text, "state"), "_csrf": input_value(form.text, "_csrf"),
        "email": email_addr}, allow_redirects=False)
    assert r.status_code == 200, r.text
    assert "If an account exists" in r.text
    return r


def text_part(msg):
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part.get_content()
    raise AssertionError(f"no text/plain part in\n{msg}")


def logs_of_type(srv, log_type):
    r = srv.api("GET", "/logs", params={"per_page": 100})
    assert r.status_code == 200, r.text
    return [e for e in r.json() if e.get("type") == log_type]


def wait_for_log(srv, log_type, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = logs_of_type(srv, log_type)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {log_type!r} log event within {timeout}s")


# --- tests --------------------------------------------------------------------------------------

def test_forgot_password_over_real_smtp(start_server, smtp):
    srv = start_server()
    provider = {
        "name": "smtp",
        "default_from_address": "accounts@keystead.test",
        "credentials": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                        "smtp_user": SMTP_USER, "smtp_pass": SMTP_PASS},
        "settings": {"tls": "none"},
    }
    r = srv.api("POST", "/emails/provider", json=provider)
    assert r.status_code == 201, r.text
    assert SMTP_PASS not in r.text
    assert "smtp_pass" not in r.json()["credentials"]
    assert r.json()["credentials"]["smtp_pass_hint"].startswith("****")
    got = srv.api("GET", "/emails/provider")
    assert got.status_code == 200 and SMTP_PASS not in got.text

    client_id = make_app(srv)
    user_id = make_user(srv, "erin@example.com", "old password 123")

    ask_for_reset(srv, client_id, "erin@example.com")
    messages = smtp.wait(1)
    assert len(messages) == 1, "the reset email did not arrive on the SMTP server"
    envelope = messages[0]
    assert envelope.mail_from == "accounts@keystead.test"
    assert envelope.rcpt_tos == ["erin@example.com"]
    msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert msg["Subject"] == "Reset your password"
    assert msg["To"] == "erin@example.com"
    assert msg["From"] == "accounts@keystead.test"
    assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}
    link = re.search(r"(http://\S+/u/reset-password/confirm\?ticket=[\w%-]+)", text_part(msg))
    assert link, text_part(msg)
    link = link.group(1)
    assert link.startswith(srv.base + "/")

    form = srv.session.get(link, allow_redirects=False)
    assert form.status_code == 200, form.text
    new_password = "new password 456"
    done = srv.session.post(srv.url("/u/reset-password/confirm"), data={
        "ticket": input_value(form.text, "ticket"), "_csrf": input_value(form.text, "_csrf"),
        "password": new_password, "password_confirm": new_password}, allow_redirects=False)
    assert done.status_code == 200, done.text
    assert "Your password has been changed" in done.text

    assert log_in(srv, client_id, "erin@example.com", "old password 123").status_code == 401
    ok = log_in(srv, client_id, "erin@example.com", new_password)
    assert ok.status_code == 302, ok.text
    assert ok.headers["Location"].startswith(CALLBACK + "?code=")

    # The link worked once.
    assert srv.session.get(link, allow_redirects=False).status_code == 400

    sent = wait_for_log(srv, "scpr")
    assert sent[0]["user_id"] == user_id
    assert logs_of_type(srv, "scp")[0]["user_id"] == user_id
    # The unknown-account answer is the same and sends nothing.
    ask_for_reset(srv, client_id, "nobody@example.com")
    wait_for_log(srv, "fcpr")
    assert len(smtp.wait(2, timeout=1)) == 1


def test_rejected_smtp_login_is_logged_as_failed_notification(start_server, smtp):
    srv = start_server()
    r = srv.api("POST", "/emails/provider", json={
        "name": "smtp", "default_from_address": "accounts@keystead.test",
        "credentials": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                        "smtp_user": SMTP_USER, "smtp_pass": "not the password"},
        "settings": {"tls": "none"}})
    assert r.status_code == 201, r.text
    client_id = make_app(srv)
    make_user(srv, "frank@example.com", "old password 123")
    ask_for_reset(srv, client_id, "frank@example.com")
    failed = wait_for_log(srv, "fn")
    assert "SMTP delivery" in failed[0]["description"], failed[0]
    assert "not the password" not in json.dumps(failed)
    assert smtp.messages == []


def test_dev_outbox_without_a_provider(start_server):
    srv = start_server()
    client_id = make_app(srv)
    make_user(srv, "gina@example.com", "old password 123")
    ask_for_reset(srv, client_id, "gina@example.com")
    wait_for_log(srv, "scpr")
    with open(os.path.join(srv.data_dir, "outbox.jsonl"), encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 1
    assert lines[0]["to"] == "gina@example.com"
    assert lines[0]["subject"] == "Reset your password"
    assert "/u/reset-password/confirm?ticket=" in lines[0]["text"]


def test_tickets_api_links_work_over_http(start_server):
    srv = start_server()
    user_id = make_user(srv, "hank@example.com", "old password 123")
    r = srv.api("POST", "/tickets/email-verification",
                json={"user_id": user_id, "result_url": "https://app.test/verified"})
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    assert ticket.startswith(srv.base + "/u/email-verification?ticket=")
    v = srv.session.get(ticket, allow_redirects=False)
    assert v.status_code == 302, v.text
    loc = urllib.parse.urlsplit(v.headers["Location"])
    assert (loc.scheme, loc.netloc, loc.path) == ("https", "app.test", "/verified")
    assert urllib.parse.parse_qs(loc.query)["success"] == ["true"]
    assert srv.api("GET", "/users/" + quote(user_id)).json()["email_verified"] is True
