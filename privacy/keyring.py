"""Master keys of the payload codec: a key ring of AES-256 keys, one active, older ones still decrypting.

The ring comes from settings (`CodecSettings`): OVERDUE_CODEC_KEYS (the JSON itself, e.g. from a secret
store) or OVERDUE_CODEC_KEYS_FILE (a JSON file), else `<OVERDUE_STATE_DIR>/codec-keys.json` when it exists
(the file `make run` creates with `ensure_dev_keyring`). The JSON:

    {"active": "k2", "keys": {"k1": "<base64 of 32 bytes>", "k2": "<base64 of 32 bytes>"}}

Master keys never encrypt a loan's payloads directly: they wrap the loan's data key (privacy/data_keys.py),
so erasing a loan destroys one small key instead of rewriting histories. `KeyProvider` is the seam a KMS
implements (wrap/unwrap with keys that never leave it); `KeyRing` is the local implementation.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per encryption (2^32 encryptions per key stay far below
# the birthday bound for 96-bit random nonces)
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEV_KEYRING_NAME = "codec-keys.json"
# How long a loan's unwrapped data key stays in a process's memory: an erasure in another process stops this
# one decrypting the loan's payloads within this many seconds.
DEFAULT_KEY_CACHE_SECONDS = 60.0


class CodecSettings(BaseSettings):
    """Settings of the payload codec (same OVERDUE_ prefix as the rest)."""

    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    codec_keys: SecretStr | None = Field(default=None, description="the key ring JSON itself")
    codec_keys_file: Path | None = Field(default=None, description="a key ring JSON file (mode 0600)")
    codec_key_cache_seconds: float = Field(
        default=DEFAULT_KEY_CACHE_SECONDS,
        gt=0,
        le=3600,
        description="how long an unwrapped loan data key stays cached; bounds how fast erasure takes effect",
    )
    codec_key_cache_size: int = Field(default=10_000, ge=1, description="loan data keys cached per process")
    state_dir: Path = ROOT / ".state"

    @property
    def configured(self) -> bool:
        """Keys given explicitly (environment or file), as production must."""
        return self.codec_keys is not None or self.codec_keys_file is not None

    @property
    def dev_keyring_file(self) -> Path:
        return self.state_dir / DEV_KEYRING_NAME


class KeyRingError(ValueError):
    """The key ring is missing or malformed; the message names the source and the field."""


class UnknownKey(LookupError):
    """A payload or data key was encrypted with a master key this ring does not hold."""


@runtime_checkable
class KeyProvider(Protocol):
    """What the codec needs from master keys. A KMS implements it with Encrypt/Decrypt on its own keys.

    `wrap` encrypts small secrets (a 32-byte data key, or a payload without loan context) under the active
    key and says which; `unwrap` reverses it with the named key. `associated_data` must match exactly.
    """

    @property
    def active_key_id(self) -> str: ...

    async def wrap(self, plaintext: bytes, associated_data: bytes) -> tuple[str, bytes]: ...

    async def unwrap(self, key_id: str, wrapped: bytes, associated_data: bytes) -> bytes: ...


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM: random nonce || ciphertext || tag."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Reverse `seal`; raises cryptography's InvalidTag when the bytes, key or associated data differ."""
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)


@dataclass(frozen=True)
class KeyRing:
    """The local key ring: master keys by id, one of them active."""

    active: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyRingError(f"active: key id {self.active!r} is not in keys ({', '.join(self.keys)})")

    @property
    def active_key_id(self) -> str:
        return self.active

    @property
    def key_ids(self) -> list[str]:
        return list(self.keys)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKey(
                f"master key {key_id!r} is not in the key ring (it holds {', '.join(self.keys)}): "
                "an old key was removed, or this process has another ring than the writer"
            ) from None

    async def wrap(self, plaintext: bytes, associated_data: bytes) -> tuple[str, bytes]:
        return self.active, seal(self.keys[self.active], plaintext, associated_data)

    async def unwrap(self, key_id: str, wrapped: bytes, associated_data: bytes) -> bytes:
        return open_sealed(self.key(key_id), wrapped, associated_data)

    # --- files ------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """A ring from its JSON; every error names `source`, the field and the key id, never key bytes."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise KeyRingError(f"{source}: not valid JSON ({error.msg}, line {error.lineno})") from None
        return cls.from_document(document, source)

    @classmethod
    def from_document(cls, document: Any, source: str) -> KeyRing:
        if not isinstance(document, dict):
            raise KeyRingError(f'{source}: expected an object {{"active": ..., "keys": {{...}}}}')
        unknown = sorted(set(document) - {"active", "keys"})
        if unknown:
            raise KeyRingError(f"{source}: unknown field(s) {', '.join(unknown)} (expected active, keys)")
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, dict) or not raw_keys:
            raise KeyRingError(f"{source}: keys: expected a non-empty object of key id -> base64 key")
        keys: dict[str, bytes] = {}
        for key_id, encoded in raw_keys.items():
            if not KEY_ID.match(key_id):
                raise KeyRingError(
                    f"{source}: keys: key id {key_id!r} must be 1-64 letters, digits, '_', '.', '-'"
                )
            if not isinstance(encoded, str):
                raise KeyRingError(f"{source}: keys.{key_id}: expected a base64 string")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyRingError(f"{source}: keys.{key_id}: not valid base64") from None
            if len(key) != KEY_BYTES:
                raise KeyRingError(
                    f"{source}: keys.{key_id}: decodes to {len(key)} bytes, an AES-256 key is {KEY_BYTES}"
                )
            keys[key_id] = key
        active = document.get("active")
        if not isinstance(active, str) or not active:
            raise KeyRingError(f"{source}: active: expected the id of one of the keys ({', '.join(keys)})")
        if active not in keys:
            raise KeyRingError(f"{source}: active: key id {active!r} is not in keys ({', '.join(keys)})")
        return cls(active=active, keys=keys)

    def to_json(self) -> str:
        return json.dumps(
            {"active": self.active, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()}},
            indent=2,
        )

    def rotated(self, new_key_id: str | None = None) -> KeyRing:
        """This ring plus a new random key, made active; the old keys stay to decrypt what they wrote."""
        key_id = new_key_id or next_key_id(self.keys)
        if not KEY_ID.match(key_id):
            raise KeyRingError(f"key id {key_id!r} must be 1-64 letters, digits, '_', '.', '-'")
        if key_id in self.keys:
            raise KeyRingError(f"key id {key_id!r} is already in the ring")
        return KeyRing(active=key_id, keys={**self.keys, key_id: secrets.token_bytes(KEY_BYTES)})

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls(active=key_id, keys={key_id: secrets.token_bytes(KEY_BYTES)})


def next_key_id(existing: Mapping[str, bytes]) -> str:
    numbers = [int(match.group(1)) for k in existing if (match := re.fullmatch(r"k(\d+)", k))]
    return f"k{max(numbers, default=0) + 1}"


def write_keyring_file(path: Path, ring: KeyRing) -> None:
    """Write atomically (a crash leaves the old ring, never half a file), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(ring.to_json())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_keyring_file(path: Path) -> KeyRing:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KeyRingError(f"{path}: cannot read the key ring ({error.strerror or error})") from None
    return KeyRing.parse(text, str(path))


def keyring_source(settings: CodecSettings) -> Path | None:
    """The file the ring comes from (None: from OVERDUE_CODEC_KEYS, or no ring at all)."""
    if settings.codec_keys is not None:
        return None
    if settings.codec_keys_file is not None:
        return settings.codec_keys_file
    return settings.dev_keyring_file if settings.dev_keyring_file.exists() else None


def load_keyring(settings: CodecSettings | None = None) -> KeyRing:
    """The ring from settings (see the module docstring); `KeyRingError` when there is none or it is bad."""
    settings = settings or CodecSettings()
    if settings.codec_keys is not None:
        return KeyRing.parse(settings.codec_keys.get_secret_value(), "OVERDUE_CODEC_KEYS")
    path = keyring_source(settings)
    if path is None:
        raise KeyRingError(
            "no payload encryption keys: set OVERDUE_CODEC_KEYS_FILE (a JSON key ring; "
            "`python -m privacy.keys rotate --file PATH` creates one) or OVERDUE_CODEC_KEYS, "
            f"or run `make run` once to create {settings.dev_keyring_file}"
        )
    return read_keyring_file(path)


def ensure_dev_keyring(state_dir: Path) -> Path | None:
    """`make run`: create `<state_dir>/codec-keys.json` (mode 0600) unless keys are configured or it exists.

    Returns the dev file in use, or None when OVERDUE_CODEC_KEYS / OVERDUE_CODEC_KEYS_FILE are set (then the
    stack uses those and creates nothing).
    """
    settings = CodecSettings(state_dir=state_dir)
    if settings.configured:
        return None
    path = settings.dev_keyring_file
    if not path.exists():
        write_keyring_file(path, KeyRing.generate())
    return path
