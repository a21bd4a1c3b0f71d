"""authlib against a real keystead: the authorization code flow with PKCE (authlib's requests
OAuth2Session) through the hosted login form, and ID-token validation with authlib's jose (keys
from the tenant's JWKS) — on the control plane and on a path-routed child tenant."""
import re
import time
import urllib.parse
import warnings

import pytest
import requests
import joserfc.errors
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from kshttp import unique_id

# authlib.jose is what this suite exercises; authlib 1.7+ marks it deprecated in favour of
# joserfc (it stays until authlib 2.0), so that one warning is expected here.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "authlib.jose module is deprecated")
    from authlib.jose import JsonWebKey, jwt
    from authlib.jose.errors import BadSignatureError
    from authlib.jose.errors import InvalidClaimError as JoseInvalidClaimError
from authlib.oidc.core import CodeIDToken

# authlib's OIDC claim classes raise joserfc's claim errors since authlib 1.7; authlib.jose's
# own class is kept for older claim classes.
INVALID_CLAIM = (JoseInvalidClaimError, joserfc.errors.InvalidClaimError)

REDIRECT_URI = "https://rp.authlib.test/callback"
PASSWORD = "Correct-Horse-9-battery"
SCOPE = "openid profile email offline_access"


def hidden(html, name):
    m = re.search(r'<input[^>]*name="%s"[^>]*value="([^"]*)"' % re.escape(name), html)
    assert m, f"no hidden input {name} in page:\n{html[:2000]}"
    return m.group(1).replace("&amp;", "&")


def login_through_form(browser, url, email, password=PASSWORD):
    """Plays the browser: follows redirects to the hosted login page, posts the form with its
    hidden state and _csrf (the session cookie rides in `browser`), and returns the callback URL
    the server finally redirects to."""
    submitted = False
    for _ in range(10):
        if url.startswith(REDIRECT_URI):
            return url
        r = browser.get(url, allow_redirects=False)
        if r.is_redirect:
            url = urllib.parse.urljoin(url, r.headers["Location"])
            continue
        assert r.status_code == 200 and not submitted and 'type="password"' in r.text, \
            f"unexpected answer from {url}: {r.status_code}\n{r.text[:2000]}"
        action = re.search(r'<form[^>]*action="([^"]*)"', r.text).group(1).replace("&amp;", "&")
        action = urllib.parse.urljoin(url, action)
        assert urllib.parse.urlsplit(action).path.endswith("/u/login"), action
        post = browser.post(action, data={"state": hidden(r.text, "state"),
                                          "_csrf": hidden(r.text, "_csrf"),
                                          "username": email, "password": password},
                            allow_redirects=False)
        assert post.status_code == 302, f"POST {action}: {post.status_code}\n{post.text[:2000]}"
        submitted = True
        url = urllib.parse.urljoin(action, post.headers["Location"])
    raise AssertionError(f"too many redirects from {url}")


class Tenant:
    """A regular web app and a user in one tenant, plus its discovery document."""

    def __init__(self, server, tenant):
        self.server, self.tenant = server, tenant
        self.issuer = server.issuer(tenant)
        r = server.api("POST", "/clients", tenant=tenant, json={
            "name": "authlib RP", "app_type": "regular_web", "callbacks": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_post"})
        assert r.status_code == 201, r.text
        self.client_id = r.json()["client_id"]
        self.client_secret = r.json()["client_secret"]
        self.email = f"{unique_id('u')}@example.com"
        r = server.api("POST", "/users", tenant=tenant, json={
            "email": self.email, "password": PASSWORD, "name": "Authlib User",
            "connection": "Username-Password-Authentication"})
        assert r.status_code == 201, r.text
        self.user_id = r.json()["user_id"]
        r = requests.get(self.issuer + ".well-known/openid-configuration", timeout=30)
        assert r.status_code == 200, r.text
        self.metadata = r.json()
        assert self.metadata["issuer"] == self.issuer

    def session(self):
        return OAuth2Session(self.client_id, self.client_secret, scope=SCOPE,
                             redirect_uri=REDIRECT_URI, code_challenge_method="S256",
                             token_endpoint_auth_method="client_secret_post")

    def code_flow(self, sess=None, browser=None):
        """Returns (session, token, nonce) after a full code flow with PKCE."""
        sess = sess or self.session()
        browser = browser or requests.Session()
        verifier = generate_token(64)
        nonce = generate_token(16)
        url, state = sess.create_authorization_url(self.metadata["authorization_endpoint"],
                                                   code_verifier=verifier, nonce=nonce)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert q["code_challenge_method"] == "S256" and q["code_challenge"], q
        callback = login_through_form(browser, url, self.email)
        token = sess.fetch_token(self.metadata["token_endpoint"], authorization_response=callback,
                                 state=state, code_verifier=verifier)
        return sess, token, nonce

    def jwks(self):
        r = requests.get(self.metadata["jwks_uri"], timeout=30)
        assert r.status_code == 200, r.text
        return JsonWebKey.import_key_set(r.json())

    def validate_id_token(self, token, nonce):
        claims = jwt.decode(
            token["id_token"], self.jwks(), claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "values": [self.issuer]}},
            claims_params={"nonce": nonce, "client_id": self.client_id,
                           "access_token": token["access_token"]})
        claims.validate(leeway=5)
        return claims


@pytest.fixture(params=["control_plane", "child_tenant"], scope="module")
def tenant(request, server):
    tid = None
    if request.param == "child_tenant":
        tid = unique_id("py")
        r = server.api("POST", "/tenants", json={"id": tid, "friendly_name": tid})
        assert r.status_code == 201, r.text
    return Tenant(server, tid)


def test_code_flow_with_pkce_and_id_token_validation(tenant):
    sess, token, nonce = tenant.code_flow()
    assert token["token_type"].lower() == "bearer"
    assert token["expires_at"] > time.time()
    assert token.get("refresh_token")

    claims = tenant.validate_id_token(token, nonce)
    assert claims["iss"] == tenant.issuer
    assert claims["aud"] == tenant.client_id
    assert claims["sub"] == tenant.user_id
    assert claims["email"] == tenant.email
    assert claims["nonce"] == nonce
    assert "at_hash" in claims and "auth_time" in claims

    # The session's token authorizes userinfo; OAuth2Session sends it as a Bearer header.
    info = sess.get(tenant.metadata["userinfo_endpoint"], timeout=30)
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == tenant.user_id


def test_id_token_validation_rejects_wrong_nonce_audience_issuer_and_key(tenant, server):
    _, token, nonce = tenant.code_flow()
    keys = tenant.jwks()

    def decode(params=None, options=None, key=keys):
        claims = jwt.decode(
            token["id_token"], key, claims_cls=CodeIDToken,
            claims_options=options or {"iss": {"essential": True, "values": [tenant.issuer]}},
            claims_params=params or {"nonce": nonce, "client_id": tenant.client_id,
                                     "access_token": token["access_token"]})
        claims.validate(leeway=5)
        return claims

    assert decode()["sub"] == tenant.user_id
    with pytest.raises(INVALID_CLAIM):
        decode(params={"nonce": "other-nonce", "client_id": tenant.client_id})
    with pytest.raises(INVALID_CLAIM):
        decode(params={"nonce": nonce, "client_id": "someone-else"})
    with pytest.raises(INVALID_CLAIM):
        decode(params={"nonce": nonce, "client_id": tenant.client_id,
                       "access_token": "not-the-access-token"})
    with pytest.raises(INVALID_CLAIM):
        decode(options={"iss": {"essential": True, "values": ["https://elsewhere.test/"]}})
    # Keys of another tenant do not verify this tenant's tokens.
    other_tenant = None
    if tenant.tenant is None:
        other_tenant = unique_id("py")
        r = server.api("POST", "/tenants", json={"id": other_tenant, "friendly_name": "other"})
        assert r.status_code == 201, r.text
    other_issuer = server.issuer(other_tenant)
    other = JsonWebKey.import_key_set(
        requests.get(other_issuer + ".well-known/jwks.json", timeout=30).json())
    with pytest.raises((BadSignatureError, ValueError)):
        decode(key=other)


def test_refresh_rotation_with_oauth2session(tenant):
    sess, token, _ = tenant.code_flow()
    rt1 = token["refresh_token"]
    new = sess.refresh_token(tenant.metadata["token_endpoint"], refresh_token=rt1)
    rt2 = new["refresh_token"]
    assert rt2 and rt2 != rt1
    assert new["access_token"] != token["access_token"]
    with pytest.raises(OAuthError) as e:
        sess.refresh_token(tenant.metadata["token_endpoint"], refresh_token=rt1)
    assert e.value.error == "invalid_grant"


def test_second_login_reuses_the_session(tenant):
    browser = requests.Session()
    _, first, _ = tenant.code_flow(browser=browser)
    assert browser.cookies, "the login set a session cookie"
    _, second, nonce = tenant.code_flow(browser=browser)
    assert tenant.validate_id_token(second, nonce)["sub"] == tenant.user_id
    assert second["access_token"] != first["access_token"]
