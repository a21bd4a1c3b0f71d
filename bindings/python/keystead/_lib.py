"""Loads libkeystead and declares the C ABI of capi/keystead.h for ctypes.

The library is found through, in order: the environment variable ``KEYSTEAD_LIBRARY`` (a path),
the library directory recorded at install time (``LIBDIR/libkeystead.so.0``), and
``ctypes.util.find_library("keystead")``.

Strings the library returns are declared ``c_void_p`` so that ctypes does not copy and drop the
pointer: :func:`take_string` copies them and releases them with ``ks_free``. ctypes releases
the GIL for the duration of every call, so several Python threads may call into one engine at
once (the C ABI allows it).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
from ctypes import POINTER, c_char_p, c_int, c_void_p
from typing import Optional

from .errors import KS_EINVALID, InvalidError

#: The oldest ABI version (``KS_ABI_VERSION``) these bindings work with.
REQUIRED_ABI = 2


def _installed_libdir() -> str:
    """``LIBDIR`` of the ``_build`` module meson writes at install time ("" in a source tree)."""
    try:
        build = importlib.import_module(f"{__package__}._build")
    except ImportError:
        return ""
    return str(getattr(build, "LIBDIR", ""))


def _find() -> Optional[str]:
    explicit = os.environ.get("KEYSTEAD_LIBRARY")
    if explicit:
        return explicit
    libdir = _installed_libdir()
    if libdir and os.path.exists(os.path.join(libdir, "libkeystead.so.0")):
        return os.path.join(libdir, "libkeystead.so.0")
    return ctypes.util.find_library("keystead")


def _load() -> tuple[ctypes.CDLL, str]:
    path = _find()
    if not path:
        raise ImportError(
            "libkeystead not found: install Keystead (meson install) or set KEYSTEAD_LIBRARY "
            "to the path of libkeystead.so.0")
    try:
        return ctypes.CDLL(path), path
    except OSError as e:
        raise ImportError(f"cannot load libkeystead from {path}: {e}") from e


#: The library, and the path (or name) it was loaded from.
lib, LIBRARY_PATH = _load()

_char_pp = POINTER(c_void_p)  # char** out-parameters, read as raw pointers


def _declare(name: str, restype: Optional[type], *argtypes: type) -> None:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


_declare("ks_version", c_char_p)  # static storage, not owned
_declare("ks_abi_version", c_int)
_declare("ks_last_error", c_char_p)  # thread-local storage, not owned
_declare("ks_free", None, c_void_p)
_declare("ks_engine_open", c_int, POINTER(c_void_p), c_char_p)
_declare("ks_engine_close", None, c_void_p)
_declare("ks_engine_handle", c_int, _char_pp, c_void_p, c_char_p)
_declare("ks_engine_manage", c_int, _char_pp, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p)
_declare("ks_token_issue", c_int, _char_pp, c_void_p, c_char_p, c_char_p)
_declare("ks_token_verify", c_int, _char_pp, c_void_p, c_char_p, c_char_p, c_char_p)
_declare("ks_password_check", c_int, _char_pp, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p)

ABI_VERSION: int = lib.ks_abi_version()
if ABI_VERSION < REQUIRED_ABI:
    raise ImportError(
        f"{LIBRARY_PATH} has ABI version {ABI_VERSION}; keystead needs {REQUIRED_ABI} or later")

#: The library's version string, e.g. "0.1.0".
LIBRARY_VERSION: str = lib.ks_version().decode()


def last_error() -> str:
    """``ks_last_error()`` of the calling thread."""
    return (lib.ks_last_error() or b"").decode("utf-8", "replace")


def take_string(ptr: c_void_p) -> Optional[str]:
    """Copies a string the library returned and frees it; None for NULL."""
    if not ptr.value:
        return None
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace")
    finally:
        lib.ks_free(ptr)


def cstr(s: Optional[str], what: str = "argument") -> Optional[bytes]:
    """A ``const char*`` argument: UTF-8 bytes, or None for NULL. A NUL character would cut the
    string short in C (a password "secret\\0junk" would check as "secret"): InvalidError."""
    if s is None:
        return None
    if "\0" in s:
        raise InvalidError(KS_EINVALID, f"{what} must not contain NUL characters")
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidError(KS_EINVALID, f"{what} is not encodable as UTF-8: {e}") from None
