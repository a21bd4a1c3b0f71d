"""Errors: one exception class per ``KS_E*`` code of the C ABI.

A failed call raises the subclass for its code. The library's message (``ks_last_error()``) is
often a JSON body — Auth0's ``{"statusCode", "error", "message", "errorCode"}`` from the
Management API, OAuth's ``{"error", "error_description"}`` from the token endpoint — which the
exception decodes into :attr:`KeysteadError.body`, :attr:`~KeysteadError.status`,
:attr:`~KeysteadError.error_code` and :attr:`~KeysteadError.message`.
"""
from __future__ import annotations

import json
from typing import Any, Optional

KS_OK = 0
KS_ERROR = -1
KS_EINVALID = -2
KS_ENOTFOUND = -3
KS_EEXISTS = -4
KS_EAUTH = -5
KS_EFORBIDDEN = -6
KS_EUSER = -7


class KeysteadError(Exception):
    """A failed Keystead call.

    Attributes:
        code: the negative ``KS_E*`` code.
        message: the Auth0 body's ``message``, the OAuth body's ``error_description``, or the
            library's raw text.
        status: the HTTP status, when known (the Auth0 body's ``statusCode``, or the token
            endpoint's status).
        error_code: the Auth0 ``errorCode`` or the OAuth ``error``.
        body: the decoded JSON error body, or None when the text is not a JSON object.
    """

    code: int
    message: str
    status: Optional[int]
    error_code: Optional[str]
    body: Optional[dict[str, Any]]

    def __init__(self, code: int, text: str, status: Optional[int] = None) -> None:
        body = _json_object(text)
        message, error_code = text, None
        if body is not None:
            if "statusCode" in body:  # Auth0's Management API error
                status = _int_or(body.get("statusCode"), status)
                error_code = _str_or_none(body.get("errorCode"))
                message = str(body.get("message", text))
            else:  # OAuth error (token endpoint)
                error_code = _str_or_none(body.get("error"))
                message = str(body.get("error_description") or body.get("error") or text)
        self.code, self.message, self.status = code, message, status
        self.error_code, self.body = error_code, body
        super().__init__(message)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code}, status={self.status}, "
                f"error_code={self.error_code!r}, message={self.message!r})")


class InvalidError(KeysteadError, ValueError):
    """``KS_EINVALID``: invalid argument, malformed JSON, or a 400 answer."""


class NotFoundError(KeysteadError, LookupError):
    """``KS_ENOTFOUND``: no such entity (404)."""


class ExistsError(KeysteadError):
    """``KS_EEXISTS``: the entity exists already (409)."""


class AuthError(KeysteadError):
    """``KS_EAUTH``: authentication failed (401, invalid token, wrong password)."""


class ForbiddenError(KeysteadError):
    """``KS_EFORBIDDEN``: not allowed (403, blocked user)."""


_BY_CODE: dict[int, type[KeysteadError]] = {
    KS_EINVALID: InvalidError,
    KS_ENOTFOUND: NotFoundError,
    KS_EEXISTS: ExistsError,
    KS_EAUTH: AuthError,
    KS_EFORBIDDEN: ForbiddenError,
}


def error_for(code: int, text: str, status: Optional[int] = None) -> KeysteadError:
    """The exception for a ``KS_E*`` code and the library's error text."""
    return _BY_CODE.get(code, KeysteadError)(code, text, status)


def _json_object(text: str) -> Optional[dict[str, Any]]:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _int_or(value: Any, default: Optional[int]) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str_or_none(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None
