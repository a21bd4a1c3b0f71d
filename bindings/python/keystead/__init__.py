"""Keystead for Python: the multi-tenant identity engine through its stable C ABI (ctypes).

    from keystead import Engine

    with Engine(data_dir="./data", public_url="http://127.0.0.1:8080") as engine:
        engine.tenants.create(id="acme", friendly_name="Acme")
        users = engine.users.list(tenant="acme")

See docs/embedding.md ("Python") for the whole API.
"""
from ._lib import ABI_VERSION, LIBRARY_PATH, LIBRARY_VERSION
from .engine import (Collection, Engine, Organizations, Response, Roles, Tenants, Tokens,
                     Users)
from .errors import (AuthError, ExistsError, ForbiddenError, InvalidError, KeysteadError,
                     NotFoundError)
from .verify import CLAIMS_KEY, Claims, TokenVerifier, require_token
from .wsgi import Dispatcher, KeysteadWSGI
from .asgi import KeysteadASGI

__version__ = "0.1.0"

__all__ = [
    "ABI_VERSION", "CLAIMS_KEY", "LIBRARY_PATH", "LIBRARY_VERSION", "AuthError", "Claims",
    "Collection", "Dispatcher", "Engine", "ExistsError", "ForbiddenError", "InvalidError",
    "KeysteadASGI", "KeysteadError", "KeysteadWSGI", "NotFoundError", "Organizations",
    "Response", "Roles", "Tenants", "TokenVerifier", "Tokens", "Users", "__version__",
    "require_token",
]
