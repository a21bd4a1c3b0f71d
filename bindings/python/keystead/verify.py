"""Checking bearer tokens in APIs written in Python.

:class:`TokenVerifier` verifies access tokens for one audience (an API identifier) through the
engine (signature, issuer, expiry, audience), and :func:`require_token` protects a WSGI app:

    verifier = TokenVerifier(engine, "https://orders.example")

    @require_token(verifier, scopes=["read:orders"])
    def orders(environ, start_response):
        claims = environ["keystead.claims"]
        ...
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Optional

from .engine import Engine
from .errors import KS_EAUTH, AuthError
from .wsgi import WSGIApp, StartResponse

#: The WSGI environ key where :func:`require_token` puts the verified :class:`Claims`.
CLAIMS_KEY = "keystead.claims"


class Claims(dict[str, Any]):
    """A verified token's claims, with accessors for the ones APIs check."""

    @property
    def scopes(self) -> set[str]:
        """The space-separated ``scope`` claim as a set."""
        scope = self.get("scope")
        return set(scope.split()) if isinstance(scope, str) else set()

    @property
    def permissions(self) -> set[str]:
        """The ``permissions`` claim (RBAC) as a set."""
        perms = self.get("permissions")
        return {p for p in perms if isinstance(p, str)} if isinstance(perms, list) else set()

    @property
    def org_id(self) -> Optional[str]:
        return self.get("org_id")

    @property
    def org_name(self) -> Optional[str]:
        return self.get("org_name")

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants `scope`, in ``scope`` or in ``permissions`` (as Keystead's
        own Management API counts them)."""
        return scope in self.scopes or scope in self.permissions


class TokenVerifier:
    """Verifies access tokens for `audience`; `tenant` (None: any of the engine's tenants)
    pins the issuing tenant."""

    def __init__(self, engine: Engine, audience: str, tenant: Optional[str] = None) -> None:
        self.engine, self.audience, self.tenant = engine, audience, tenant

    def verify(self, token: str) -> Claims:
        """The token's claims; :class:`AuthError` when it is not valid for the audience."""
        return Claims(self.engine.tokens.verify(token, tenant=self.tenant,
                                                audience=self.audience))

    def verify_header(self, authorization: Optional[str]) -> Claims:
        """The claims of the token in an ``Authorization: Bearer <token>`` header value;
        :class:`AuthError` when the header is missing, not Bearer, or the token is invalid."""
        return self.verify(bearer_token(authorization))


def bearer_token(authorization: Optional[str]) -> str:
    """The token of an ``Authorization`` header value; :class:`AuthError` unless it is
    ``Bearer <token>``."""
    if not authorization:
        raise AuthError(KS_EAUTH, "Missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError(KS_EAUTH, "The Authorization header is not 'Bearer <token>'")
    return token


def require_token(verifier: TokenVerifier, scopes: Iterable[str] = (),
                  org: bool = False) -> Callable[[WSGIApp], WSGIApp]:
    """A decorator (or middleware factory) for WSGI apps: requests need a valid bearer token
    for the verifier's audience granting every one of `scopes` and, with `org`, an
    organization claim (``org_id``). The app finds the :class:`Claims` in
    ``environ["keystead.claims"]``.

    Refusals follow RFC 6750, with a JSON body ``{"error", "error_description"}``: no token →
    401 ``WWW-Authenticate: Bearer``; an invalid token → 401 with ``error="invalid_token"``;
    a missing scope or organization → 403 with ``error="insufficient_scope"``.
    """
    required = tuple(scopes)

    def decorate(app: WSGIApp) -> WSGIApp:
        def protected(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            header = environ.get("HTTP_AUTHORIZATION")
            if not header:
                return _refuse(start_response, 401, None, "Missing bearer token")
            try:
                claims = verifier.verify_header(header)
            except AuthError as e:
                return _refuse(start_response, 401, "invalid_token", e.message)
            missing = [s for s in required if not claims.has_scope(s)]
            if missing:
                return _refuse(start_response, 403, "insufficient_scope",
                               "Insufficient scope, expected: " + " ".join(missing), required)
            if org and not claims.org_id:
                return _refuse(start_response, 403, "insufficient_scope",
                               "An organization token is required", required)
            environ[CLAIMS_KEY] = claims
            return app(environ, start_response)

        protected.__name__ = getattr(app, "__name__", "protected")
        protected.__doc__ = getattr(app, "__doc__", None)
        return protected

    return decorate


def _refuse(start_response: StartResponse, status: int, error: Optional[str],
            description: str, scopes: tuple[str, ...] = ()) -> list[bytes]:
    challenge = "Bearer"
    if error:
        params = [f'error="{error}"', f'error_description="{_quoted(description)}"']
        if scopes:
            params.append(f'scope="{" ".join(scopes)}"')
        challenge += " " + ", ".join(params)
    body = json.dumps({"error": error or "unauthorized",
                       "error_description": description}).encode()
    start_response("401 Unauthorized" if status == 401 else "403 Forbidden", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
        ("WWW-Authenticate", challenge), ("Cache-Control", "no-store")])
    return [body]


def _quoted(text: str) -> str:
    """`text` fit for an RFC 6750 quoted string (printable ASCII without " and \\)."""
    return "".join(c for c in text if " " <= c <= "~" and c not in '"\\')
