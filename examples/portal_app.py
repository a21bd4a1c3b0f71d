#!/usr/bin/env python3
"""A SaaS platform's portal in Python, with Keystead mounted in the same process (stdlib only).

Every path except /portal/... is Keystead: discovery, /authorize, the hosted login pages,
/oauth/token, the Management API, each tenant under /t/{tenant}/... The portal has one route,

    GET /portal/users

for a control-plane access token with the audience urn:keystead:management that carries an
organization (`org_name`), the token a portal user gets with
/authorize?organization=<tenant>&audience=urn:keystead:management (docs/multi-tenancy.md,
rule (b)). The organization of tenant T is named T, so the route answers with the users of
that customer tenant. A token without an organization is 403, no token 401.

    python3 examples/portal_app.py --data-dir ./data --port 8080

needs the keystead package (pip install ./bindings/python) and an installed libkeystead.
"""
from __future__ import annotations

import argparse
import json
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIServer, make_server

from keystead import (CLAIMS_KEY, Dispatcher, Engine, NotFoundError, TokenVerifier,
                      require_token)

MGMT_AUDIENCE = "urn:keystead:management"


def _json(start_response: Callable[..., Any], status: str, value: Any) -> list[bytes]:
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def make_portal(engine: Engine, control_plane: str = "control_plane") -> Callable[..., Any]:
    """The portal's own WSGI app (mounted at /portal)."""
    verifier = TokenVerifier(engine, MGMT_AUDIENCE, tenant=control_plane)

    @require_token(verifier, scopes=["read:users"], org=True)
    def portal(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] != "/users":
            return _json(start_response, "404 Not Found", {"error": "not_found"})
        if environ["REQUEST_METHOD"] != "GET":
            return _json(start_response, "405 Method Not Allowed", {"error": "method"})
        tenant = environ[CLAIMS_KEY].org_name
        try:
            users = engine.users.list(tenant=tenant, per_page=100)
        except NotFoundError:  # an organization that stands for no tenant
            return _json(start_response, "404 Not Found", {"error": "no_such_tenant"})
        return _json(start_response, "200 OK", {"tenant": tenant, "users": users})

    return portal


def make_app(engine: Engine, control_plane: str = "control_plane") -> Dispatcher:
    """The whole site: /portal/... to the portal, everything else to Keystead."""
    return Dispatcher(engine, {"/portal": make_portal(engine, control_plane)})


class ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per connection: a login hashing a password does not hold up the others."""

    daemon_threads = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="./data")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--public-url", help="default: http://HOST:PORT")
    args = parser.parse_args()
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    with Engine(data_dir=args.data_dir, public_url=public_url) as engine:
        server = make_server(args.host, args.port, make_app(engine),
                             server_class=ThreadingServer)
        print(f"portal listening on {public_url} (Keystead at /, the portal at /portal/users)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


if __name__ == "__main__":
    main()
