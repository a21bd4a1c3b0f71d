"""Decoding and RS256 verification of JWTs against a JWKS (with `cryptography`)."""
import base64
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def decode(token):
    """(header, claims, signing_input, signature) without verifying."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a JWS compact serialization: {token!r}"
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2])


def encode_unsigned(header, claims, signature=b""):
    """A compact JWS with arbitrary header/claims and the given (usually bogus) signature."""
    return ".".join([b64url_encode(json.dumps(header).encode()),
                     b64url_encode(json.dumps(claims).encode()),
                     b64url_encode(signature)])


def rsa_public_key(jwk):
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def verify_rs256(token, jwks):
    """Verifies token with the JWKS key named by its kid; returns (header, claims)."""
    header, claims, signing_input, signature = decode(token)
    assert header.get("alg") == "RS256", header
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
    assert keys, f"kid {header.get('kid')!r} not in JWKS {[k.get('kid') for k in jwks['keys']]}"
    try:
        rsa_public_key(keys[0]).verify(signature, signing_input, padding.PKCS1v15(),
                                       hashes.SHA256())
    except InvalidSignature:
        raise AssertionError("RS256 signature does not verify with the JWKS key") from None
    return header, claims
