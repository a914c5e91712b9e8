"""Signing keys: PriorGate's own access-token key (``KeyProvider``) and JWK helpers shared by clients.

Key ids are RFC 7638 JWK thumbprints, so a key's ``kid`` is stable across restarts and derivable by
anyone holding the public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# EC curve per JOSE algorithm (RFC 7518 §3.4).
_CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}
_ALG_BY_CURVE: dict[str, str] = {"secp256r1": "ES256", "secp384r1": "ES384"}


class KeyMaterialError(ValueError):
    """A key file or key parameter is unusable; the message names it (never the key material)."""


def generate_private_key(algorithm: str) -> PrivateKey:
    """A fresh key for ``ES256``/``ES384`` (P-256/P-384) or ``RS256``/``RS384`` (RSA-2048)."""
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm])
    if algorithm in ("RS256", "RS384", "RS512"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise KeyMaterialError(f"unsupported signing algorithm {algorithm!r}")


def algorithm_for(key: PrivateKey | PublicKey, *, rsa_algorithm: str = "RS256") -> str:
    """The JOSE algorithm a key is used with: ES256/ES384 by curve, ``rsa_algorithm`` for RSA keys."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return rsa_algorithm
    alg = _ALG_BY_CURVE.get(key.curve.name)
    if alg is None:
        raise KeyMaterialError(f"unsupported EC curve {key.curve.name}")
    return alg


def public_jwk(key: PrivateKey | PublicKey, algorithm: str) -> dict[str, Any]:
    """The public JWK of a key, with ``kid`` (RFC 7638 thumbprint), ``alg`` and ``use: sig``."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else key
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = dict(RSAAlgorithm.to_jwk(public, as_dict=True))
    else:
        jwk = dict(ECAlgorithm.to_jwk(public, as_dict=True))
    jwk = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}
    jwk["kid"] = jwk_thumbprint(jwk)
    jwk["alg"] = algorithm
    jwk["use"] = "sig"
    return jwk


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK (base64url, no padding)."""
    members = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key_pem(data: bytes, *, source: str = "key") -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"{source}: not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyMaterialError(f"{source}: only RSA and EC (P-256, P-384) keys are supported")
    return key


@dataclass(frozen=True)
class SigningKey:
    """A private key with its JOSE algorithm and key id."""

    kid: str
    algorithm: str
    private_key: PrivateKey

    @property
    def public_jwk(self) -> dict[str, Any]:
        return public_jwk(self.private_key, self.algorithm)

    @classmethod
    def of(cls, key: PrivateKey, algorithm: str | None = None) -> SigningKey:
        alg = algorithm or algorithm_for(key)
        return cls(jwk_thumbprint(public_jwk(key, alg)), alg, key)


class KeyProvider(Protocol):
    """Where PriorGate's token-signing keys come from. Verification accepts every key in the JWKS,
    so a rotated-out key stays valid until the tokens it signed expire."""

    def signing_key(self) -> SigningKey: ...

    def verification_keys(self) -> tuple[SigningKey, ...]: ...


def jwks_of(provider: KeyProvider) -> dict[str, Any]:
    """The public JWK Set served at ``/auth/jwks`` (RFC 7517 §5)."""
    return {"keys": [k.public_jwk for k in provider.verification_keys()]}


@dataclass(frozen=True)
class StaticKeyProvider:
    """A fixed current key plus optional previous keys (still accepted for verification)."""

    current: SigningKey
    previous: tuple[SigningKey, ...] = ()

    def signing_key(self) -> SigningKey:
        return self.current

    def verification_keys(self) -> tuple[SigningKey, ...]:
        return (self.current, *self.previous)

    @classmethod
    def generated(cls, algorithm: str = "ES256") -> StaticKeyProvider:
        """An in-memory key for development and tests; tokens do not survive a restart."""
        return cls(SigningKey.of(generate_private_key(algorithm), algorithm))

    @classmethod
    def from_pem_files(cls, current: Path, *previous: Path) -> StaticKeyProvider:
        """Keys from PEM files (setting: signing key path, optionally rotated-out keys after it)."""
        keys = [
            SigningKey.of(load_private_key_pem(p.read_bytes(), source=str(p))) for p in (current, *previous)
        ]
        return cls(keys[0], tuple(keys[1:]))


def create_private_key_file(path: Path, key: PrivateKey) -> PrivateKey:
    """Write ``key`` to ``path`` (mode 0600) unless the file exists; return the key the file holds.

    The PEM is written to a private temporary file and hard-linked into place, so concurrent workers
    never read a half-written key and exactly one key wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_key_pem(key))
        try:
            os.link(temporary, path)
        except FileExistsError:
            return load_private_key_pem(path.read_bytes(), source=str(path))
        return key
    finally:
        temporary.unlink(missing_ok=True)


def load_or_create_signing_key(path: Path, algorithm: str = "ES256") -> SigningKey:
    """The key in ``path``, created (mode 0600) when absent so every worker process shares one key.

    For development and single-host deployments; production points the setting at a managed key file.
    """
    if path.exists():
        return SigningKey.of(load_private_key_pem(path.read_bytes(), source=str(path)))
    return SigningKey.of(create_private_key_file(path, generate_private_key(algorithm)))
