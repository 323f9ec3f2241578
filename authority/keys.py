"""Ed25519 keys of the signers that act on loans, and the ring of public keys the workflow trusts.

A signer (the admin UI, an operator's CLI, servicing) holds one active signing key. The worker holds only
public keys: the trust ring, one entry per key id, each naming which roles a token signed by that key may
assert and, for keys bound to one identity (an operator, servicing), which actor. Rotation: add the new
public key to the ring, switch the signer to the new private key, and remove the old public key once no
open run can replay a signal signed with it (README, "Who may act").

Files are JSON:

    signing key  {"kid": "admin-2026a", "signer": "admin", "roles": ["collector", "supervisor", "admin"],
                  "identity": null, "private_key": "<base64url of the 32-byte Ed25519 seed>"}
    trust ring   {"keys": [{"kid": "admin-2026a", "signer": "admin", "roles": [...], "identity": null,
                  "public_key": "<base64url of the 32-byte Ed25519 public key>"}, ...]}
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

Role = Literal["collector", "supervisor", "admin", "operator", "servicing", "borrower"]
ROLES: tuple[Role, ...] = get_args(Role)


class KeyFileError(ValueError):
    """A key file or trust ring that cannot be used; the message names the file and the field."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _roles(value: Any, where: str) -> frozenset[Role]:
    if not isinstance(value, list) or not value or not all(r in ROLES for r in value):
        raise KeyFileError(f"{where}: roles: a non-empty list of {', '.join(ROLES)}")
    return frozenset(value)


def _text(entry: Mapping[str, Any], name: str, where: str, optional: bool = False) -> str | None:
    value = entry.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > 64:
        raise KeyFileError(f"{where}: {name}: a string of 1 to 64 characters")
    return value


@dataclass(frozen=True)
class TrustedKey:
    kid: str
    signer: str
    roles: frozenset[Role]
    identity: str | None  # None: the key may assert any actor name (the admin UI's logged-in users)
    public_key: Ed25519PublicKey

    def verifies(self, signature: bytes, data: bytes) -> bool:
        try:
            self.public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "kid": self.kid,
            "signer": self.signer,
            "roles": sorted(self.roles),
            "identity": self.identity,
            "public_key": b64(raw),
        }


@dataclass(frozen=True)
class SigningKey:
    kid: str
    signer: str
    roles: frozenset[Role]
    identity: str | None
    private_key: Ed25519PrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def public(self) -> TrustedKey:
        return TrustedKey(self.kid, self.signer, self.roles, self.identity, self.private_key.public_key())

    def to_json(self) -> dict[str, Any]:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {**self.public().to_json(), "private_key": b64(seed)}

    @staticmethod
    def generate(
        kid: str, signer: str, roles: Iterable[Role], identity: str | None = None, seed: bytes | None = None
    ) -> SigningKey:
        """A new key (`seed`: 32 bytes for a reproducible key, tests only)."""
        private = Ed25519PrivateKey.from_private_bytes(seed) if seed else Ed25519PrivateKey.generate()
        return SigningKey(kid, signer, frozenset(roles), identity, private)

    @staticmethod
    def from_json(entry: Any, where: str = "signing key") -> SigningKey:
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where}: a JSON object with kid, signer, roles, identity, private_key")
        try:
            private = Ed25519PrivateKey.from_private_bytes(unb64(str(entry.get("private_key", ""))))
        except ValueError:
            raise KeyFileError(f"{where}: private_key: base64url of a 32-byte Ed25519 seed") from None
        return SigningKey(
            _text(entry, "kid", where) or "",
            _text(entry, "signer", where) or "",
            _roles(entry.get("roles"), where),
            _text(entry, "identity", where, optional=True),
            private,
        )


def trusted_key_from_json(entry: Any, where: str) -> TrustedKey:
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where}: a JSON object with kid, signer, roles, identity, public_key")
    try:
        public = Ed25519PublicKey.from_public_bytes(unb64(str(entry.get("public_key", ""))))
    except ValueError:
        raise KeyFileError(f"{where}: public_key: base64url of a 32-byte Ed25519 public key") from None
    return TrustedKey(
        _text(entry, "kid", where) or "",
        _text(entry, "signer", where) or "",
        _roles(entry.get("roles"), where),
        _text(entry, "identity", where, optional=True),
        public,
    )


class TrustedKeys:
    """The key ring the workflow verifies against: public keys by key id (several per signer while a
    rotation is under way)."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise KeyFileError(f"trusted keys: kid {key.kid!r} appears twice")
            self._keys[key.kid] = key

    def get(self, kid: str) -> TrustedKey | None:
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        return sorted(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def to_json(self) -> dict[str, Any]:
        return {"keys": [self._keys[kid].to_json() for kid in self.kids()]}

    @staticmethod
    def from_json(document: Any, where: str = "trusted keys") -> TrustedKeys:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeyFileError(f'{where}: a JSON object {{"keys": [...]}}')
        return TrustedKeys(
            trusted_key_from_json(entry, f"{where}: keys[{n}]") for n, entry in enumerate(document["keys"])
        )


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise KeyFileError(f"{what} {path}: cannot be read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise KeyFileError(f"{what} {path}: not JSON ({error.msg}, line {error.lineno})") from None


def write_private(path: Path, document: Mapping[str, Any]) -> None:
    """Write a private key readable by its owner only (created 0600, never world-readable meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle, indent=2)
