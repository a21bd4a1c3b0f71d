"""The engine: one ``ks_engine`` of the C ABI, with Pythonic access to the Management API,
tokens and passwords.

An :class:`Engine` may be used from many threads at once: ctypes releases the GIL during every
call into the library, and the library serves concurrent calls on one engine. :meth:`Engine.close`
waits for the calls in progress on other threads, then closes; later calls raise
:class:`~keystead.errors.KeysteadError`.
"""
from __future__ import annotations

import json
import os
import threading
import weakref
from contextlib import contextmanager
from ctypes import byref, c_void_p
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union
from urllib.parse import quote, urlencode

from . import _lib
from .errors import (KS_EAUTH, KS_EFORBIDDEN, KS_EINVALID, KS_ERROR, InvalidError, KeysteadError,
                     error_for)

JSON = Any
Headers = Union[Mapping[str, str], Iterable[tuple[str, str]]]
Query = Union[str, Mapping[str, Any], None]

#: The grant type of :meth:`Tokens.for_user` (the host vouches for the user; C ABI only).
USER_GRANT = "urn:keystead:grant-type:user"

# The HTTP status a ks_token_issue code stands for (its error body carries none).
_TOKEN_STATUS = {KS_EINVALID: 400, KS_EAUTH: 401, KS_EFORBIDDEN: 403}


@dataclass
class Response:
    """Keystead's answer to one HTTP request (:meth:`Engine.handle`)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def json(self) -> JSON:
        """The body decoded as JSON."""
        return json.loads(self.body)


class Engine:
    """A Keystead engine (``ks_engine_open``).

    ``Engine(config, **settings)``: the settings of docs/configuration.md by their JSON names
    (``data_dir``, ``mode``, ``public_url``, …); keyword settings win over `config`. Unset
    settings come from the ``KEYSTEAD_*`` environment variables, then the defaults. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, config: Optional[Mapping[str, Any]] = None, **settings: Any) -> None:
        merged = {**(config or {}), **settings}
        handle = c_void_p()
        text = json.dumps(merged, default=os.fspath)
        rc = _lib.lib.ks_engine_open(byref(handle), _lib.cstr(text, "config"))
        if rc != 0:
            raise error_for(rc, _lib.last_error())
        self._handle: Optional[int] = handle.value
        self._cond = threading.Condition()
        self._active = 0
        # Closes the engine if it is garbage-collected (or at exit) without close().
        self._finalizer = weakref.finalize(self, _lib.lib.ks_engine_close, handle.value)
        self.tenants = Tenants(self)
        self.users = Users(self, "/users")
        self.clients = Collection(self, "/clients")
        self.connections = Collection(self, "/connections")
        self.resource_servers = Collection(self, "/resource-servers")
        self.roles = Roles(self, "/roles")
        self.organizations = Organizations(self, "/organizations")
        self.client_grants = Collection(self, "/client-grants")
        self.hooks = Collection(self, "/hooks")
        self.tokens = Tokens(self)

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Closes the engine once the calls in progress have returned. Idempotent."""
        with self._cond:
            if self._handle is None:
                return
            self._handle = None
            self._cond.wait_for(lambda: self._active == 0)
        self._finalizer()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<keystead.Engine {'closed' if self.closed else 'open'}>"

    @contextmanager
    def _use(self) -> Iterator[int]:
        with self._cond:
            if self._handle is None:
                raise KeysteadError(KS_ERROR, "the engine is closed")
            handle = self._handle
            self._active += 1
        try:
            yield handle
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _call(self, fn: Callable[..., int], *args: Any,
              status: Optional[Mapping[int, int]] = None) -> Optional[str]:
        """Calls ``fn(&out, engine, *args)``; the string it returned, or raises for its code."""
        out = c_void_p()
        with self._use() as handle:
            rc = fn(byref(out), handle, *args)
            error = _lib.last_error() if rc != 0 else ""
        text = _lib.take_string(out)
        if rc != 0:
            body_status = (status or {}).get(rc) if error.startswith("{") else None
            raise error_for(rc, error, body_status)
        return text

    # --- HTTP -----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, *, query: str = "", headers: Optional[Headers] = None,
               body: Union[bytes, str] = b"", remote_addr: str = "",
               secure: bool = False) -> Response:
        """Serves one HTTP request (``ks_engine_handle``), as Keystead's own server would.

        `path` is the raw (percent-encoded) request path, `query` the raw query string. Bodies
        cross the C ABI as JSON strings, so they are UTF-8 text both ways: a request body that
        is not valid UTF-8 raises :class:`InvalidError`, and invalid UTF-8 in a response body
        would arrive as U+FFFD (Keystead's own answers are JSON, HTML, forms and text).
        """
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InvalidError(KS_EINVALID, f"the request body is not UTF-8: {e}") from None
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        request: dict[str, Any] = {"method": method, "path": path, "headers": pairs,
                                   "body": body, "remote_addr": remote_addr,
                                   "secure": bool(secure)}
        if query:
            request["query"] = query
        text = self._call(_lib.lib.ks_engine_handle, _lib.cstr(json.dumps(request), "request"))
        answer = json.loads(text or "{}")
        return Response(status=int(answer["status"]),
                        headers=[(str(k), str(v)) for k, v in answer.get("headers", [])],
                        body=str(answer.get("body", "")).encode("utf-8"))

    # --- Management API -------------------------------------------------------------------------

    def manage(self, method: str, path: str, body: JSON = None, *, tenant: Optional[str] = None,
               query: Query = None) -> JSON:
        """One Management API v2 call with system authority (``ks_engine_manage``).

        `path` is below ``/api/v2`` (``"/users"``); ids in it must be percent-encoded (the
        sub-APIs do it). `query` is a raw query string or a mapping, whose values are
        URL-encoded (booleans as ``true``/``false``, sequences repeated). `tenant` None is the
        control plane. Returns the decoded JSON answer, None for an empty one (204).
        """
        qs = query if isinstance(query, str) else _encode_query(query or {})
        if qs:
            path += ("&" if "?" in path else "?") + qs
        payload = None if body is None else json.dumps(body)
        text = self._call(_lib.lib.ks_engine_manage, _lib.cstr(tenant, "tenant"),
                          _lib.cstr(method.upper(), "method"), _lib.cstr(path, "path"),
                          _lib.cstr(payload, "body"))
        return json.loads(text) if text else None

    # --- passwords ------------------------------------------------------------------------------

    def check_password(self, email: str, password: str, *, tenant: Optional[str] = None,
                       connection: Optional[str] = None) -> str:
        """The id of the database user with this email and password (``ks_password_check``).

        Raises :class:`AuthError` for an unknown user or a wrong password (one message for
        both) and :class:`ForbiddenError` for a blocked user. Hashing is slow on purpose
        (argon2id): call it off latency-critical threads, and limit attempts yourself.
        """
        user_id = self._call(_lib.lib.ks_password_check, _lib.cstr(tenant, "tenant"),
                             _lib.cstr(connection, "connection"), _lib.cstr(email, "email"),
                             _lib.cstr(password, "password"))
        return user_id or ""


def _encode_query(query: Mapping[str, Any]) -> str:
    def text(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    pairs = []
    for k, v in query.items():
        if v is None:
            continue
        for item in v if isinstance(v, (list, tuple)) else (v,):
            pairs.append((k, text(item)))
    return urlencode(pairs, quote_via=quote)


def _merge(data: Optional[Mapping[str, Any]], fields: Mapping[str, Any]) -> dict[str, Any]:
    return {**(data or {}), **fields}


def _seg(value: str) -> str:
    """One percent-encoded path segment (user ids hold ``|``)."""
    return quote(str(value), safe="")


class Collection:
    """A Management API collection (``/users``, ``/clients``, …) of any tenant (None: the
    control plane)."""

    def __init__(self, engine: Engine, path: str) -> None:
        self._engine, self.path = engine, path

    def _manage(self, method: str, sub: str = "", body: JSON = None,
                tenant: Optional[str] = None, query: Query = None) -> JSON:
        return self._engine.manage(method, self.path + sub, body, tenant=tenant, query=query)

    def list(self, tenant: Optional[str] = None, **query: Any) -> JSON:
        """``GET`` the collection: a list, or the paged object with ``include_totals=True``."""
        return self._manage("GET", tenant=tenant, query=query)

    def get(self, id: str, tenant: Optional[str] = None) -> JSON:
        return self._manage("GET", "/" + _seg(id), tenant=tenant)

    def create(self, data: Optional[Mapping[str, Any]] = None, /, tenant: Optional[str] = None,
               **fields: Any) -> JSON:
        """Creates an entity from `data` and keyword `fields` (merged; keywords win)."""
        return self._manage("POST", body=_merge(data, fields), tenant=tenant)

    def update(self, id: str, data: Optional[Mapping[str, Any]] = None, /,
               tenant: Optional[str] = None, **fields: Any) -> JSON:
        return self._manage("PATCH", "/" + _seg(id), _merge(data, fields), tenant=tenant)

    def delete(self, id: str, tenant: Optional[str] = None) -> None:
        self._manage("DELETE", "/" + _seg(id), tenant=tenant)


class Users(Collection):
    """``/users``, with role assignment."""

    def roles(self, user_id: str, tenant: Optional[str] = None) -> JSON:
        return self._manage("GET", f"/{_seg(user_id)}/roles", tenant=tenant)

    def assign_roles(self, user_id: str, role_ids: Sequence[str],
                     tenant: Optional[str] = None) -> None:
        self._manage("POST", f"/{_seg(user_id)}/roles", {"roles": list(role_ids)}, tenant)

    def remove_roles(self, user_id: str, role_ids: Sequence[str],
                     tenant: Optional[str] = None) -> None:
        self._manage("DELETE", f"/{_seg(user_id)}/roles", {"roles": list(role_ids)}, tenant)


Permission = Union[Mapping[str, str], tuple[str, str]]


class Roles(Collection):
    """``/roles``, with permissions. A permission is ``{"resource_server_identifier": …,
    "permission_name": …}`` or the pair ``(identifier, name)``."""

    def permissions(self, role_id: str, tenant: Optional[str] = None) -> JSON:
        return self._manage("GET", f"/{_seg(role_id)}/permissions", tenant=tenant)

    def add_permissions(self, role_id: str, permissions: Iterable[Permission],
                        tenant: Optional[str] = None) -> None:
        self._manage("POST", f"/{_seg(role_id)}/permissions",
                     {"permissions": _permissions(permissions)}, tenant)

    def remove_permissions(self, role_id: str, permissions: Iterable[Permission],
                           tenant: Optional[str] = None) -> None:
        self._manage("DELETE", f"/{_seg(role_id)}/permissions",
                     {"permissions": _permissions(permissions)}, tenant)


def _permissions(permissions: Iterable[Permission]) -> list[dict[str, str]]:
    out = []
    for p in permissions:
        if isinstance(p, Mapping):
            out.append(dict(p))
        else:
            identifier, name = p
            out.append({"resource_server_identifier": identifier, "permission_name": name})
    return out


class Organizations(Collection):
    """``/organizations``, with members and member roles."""

    def get_by_name(self, name: str, tenant: Optional[str] = None) -> JSON:
        return self._manage("GET", "/name/" + _seg(name), tenant=tenant)

    def members(self, org_id: str, tenant: Optional[str] = None, **query: Any) -> JSON:
        return self._manage("GET", f"/{_seg(org_id)}/members", tenant=tenant, query=query)

    def add_members(self, org_id: str, user_ids: Sequence[str],
                    tenant: Optional[str] = None) -> None:
        self._manage("POST", f"/{_seg(org_id)}/members", {"members": list(user_ids)}, tenant)

    def remove_members(self, org_id: str, user_ids: Sequence[str],
                       tenant: Optional[str] = None) -> None:
        self._manage("DELETE", f"/{_seg(org_id)}/members", {"members": list(user_ids)}, tenant)

    def member_roles(self, org_id: str, user_id: str, tenant: Optional[str] = None) -> JSON:
        return self._manage("GET", f"/{_seg(org_id)}/members/{_seg(user_id)}/roles",
                            tenant=tenant)

    def add_member_roles(self, org_id: str, user_id: str, role_ids: Sequence[str],
                         tenant: Optional[str] = None) -> None:
        self._manage("POST", f"/{_seg(org_id)}/members/{_seg(user_id)}/roles",
                     {"roles": list(role_ids)}, tenant)


class Tenants:
    """``/tenants`` on the control plane: the registry of child tenants (no `tenant`
    argument: the API exists only on the control plane)."""

    path = "/tenants"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list(self, **query: Any) -> JSON:
        return self._engine.manage("GET", self.path, query=query)

    def get(self, id: str) -> JSON:
        return self._engine.manage("GET", f"{self.path}/{_seg(id)}")

    def create(self, data: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> JSON:
        """Provisions a tenant: ``create(id="acme", friendly_name="Acme")``."""
        return self._engine.manage("POST", self.path, _merge(data, fields))

    def update(self, id: str, data: Optional[Mapping[str, Any]] = None, /,
               **fields: Any) -> JSON:
        return self._engine.manage("PATCH", f"{self.path}/{_seg(id)}", _merge(data, fields))

    def delete(self, id: str) -> None:
        self._engine.manage("DELETE", f"{self.path}/{_seg(id)}")

    def suspend(self, id: str) -> JSON:
        return self._engine.manage("POST", f"{self.path}/{_seg(id)}/suspend")

    def resume(self, id: str) -> JSON:
        return self._engine.manage("POST", f"{self.path}/{_seg(id)}/resume")


class Tokens:
    """Token issuance and verification without HTTP."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def issue(self, params: Optional[Mapping[str, Optional[str]]] = None, /,
              tenant: Optional[str] = None, **more: Optional[str]) -> dict[str, Any]:
        """The tenant's token endpoint (``ks_token_issue``): the token response.

        ``issue(grant_type="client_credentials", client_id=…, client_secret=…, audience=…)``.
        Parameters set to None are left out. An OAuth error raises the class for its status
        (400 :class:`InvalidError`, 401 :class:`AuthError`, 403 :class:`ForbiddenError`) with
        ``error_code`` the OAuth ``error``.
        """
        request = {k: v for k, v in _merge(params, more).items() if v is not None}
        text = self._engine._call(_lib.lib.ks_token_issue, _lib.cstr(tenant, "tenant"),
                                  _lib.cstr(json.dumps(request), "request"),
                                  status=_TOKEN_STATUS)
        response: dict[str, Any] = json.loads(text or "{}")
        return response

    def for_user(self, user_id: str, *, client_id: str, audience: Optional[str] = None,
                 scope: Optional[str] = None, organization: Optional[str] = None,
                 tenant: Optional[str] = None) -> dict[str, Any]:
        """Tokens for a user the host has authenticated itself (grant type
        ``urn:keystead:grant-type:user``, accepted only through the C ABI)."""
        return self.issue({"grant_type": USER_GRANT, "client_id": client_id, "user_id": user_id,
                           "audience": audience, "scope": scope, "organization": organization},
                          tenant=tenant)

    def verify(self, token: str, *, tenant: Optional[str] = None,
               audience: Optional[str] = None) -> dict[str, Any]:
        """The claims of a JWT one of the engine's tenants issued (``ks_token_verify``):
        signature, issuer (`tenant` pins it; None: any tenant), expiry and, when given,
        `audience`. :class:`AuthError` with the reason otherwise."""
        text = self._engine._call(_lib.lib.ks_token_verify, _lib.cstr(token, "token"),
                                  _lib.cstr(tenant, "tenant"), _lib.cstr(audience, "audience"))
        claims: dict[str, Any] = json.loads(text or "{}")
        return claims
