"""Dev keys for `make run`: one signing key per signer and the trust ring, kept in `.state/authority/`.

`prepare_stack` is the one call `make run` makes. It creates what is missing (existing keys are kept, so
tokens and histories stay verifiable across restarts), then points this process at what it needs: the
admin UI's and servicing's signing keys (the admin UI and the sandbox agency's payments run in it) and the
trust ring (the worker runs in it). The operator key is only for the CLI, which finds it there by itself
(`OVERDUE_SIGNING_KEY_FILES` unset); nothing here is for production, where each process gets its own key.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from authority.keys import Role, SigningKey, TrustedKeys, read_json, write_private
from authority.settings import DEV_DIR

SIGNERS: dict[str, tuple[tuple[Role, ...], str | None]] = {
    "admin": (("collector", "supervisor", "admin"), None),  # asserts the logged-in user, whoever it is
    "operator": (("operator",), None),  # identity: the login name of whoever runs make run
    "servicing": (("servicing",), "servicing"),
    "borrower": (("borrower",), "borrower"),  # the borrower page: acts for the borrower of the link only
}


@dataclass(frozen=True)
class DevKeys:
    directory: Path
    keys: dict[str, Path]
    trust: Path


def _identity(signer: str) -> str | None:
    if signer == "operator":  # the CLI acts as whoever runs make run, as it did with --collector $USER
        return (os.environ.get("USER") or "operator")[:64]
    return SIGNERS[signer][1]


def ensure_dev_keys(state_dir: Path) -> DevKeys:
    directory = state_dir / DEV_DIR
    paths: dict[str, Path] = {}
    keys: list[SigningKey] = []
    for signer, (roles, _) in SIGNERS.items():
        path = directory / f"{signer}.key"
        if path.exists():
            key = SigningKey.from_json(read_json(path, "dev key"), f"dev key {path}")
        else:
            kid = f"{signer}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
            key = SigningKey.generate(kid, signer, roles, _identity(signer))
            write_private(path, key.to_json())
        paths[signer] = path
        keys.append(key)
    trust_path = directory / "trusted.json"
    kept = TrustedKeys.from_json(read_json(trust_path, "trusted keys")) if trust_path.exists() else None
    ring = {key.kid: key.public() for key in keys}
    if kept is not None:  # older (rotated) keys stay trusted until removed by hand
        ring = {kid: kept_key for kid in kept.kids() if (kept_key := kept.get(kid))} | ring
    trust_path.parent.mkdir(parents=True, exist_ok=True)
    trust_path.write_text(json.dumps(TrustedKeys(ring.values()).to_json(), indent=2))
    return DevKeys(directory, paths, trust_path)


def prepare_stack(state_dir: Path) -> DevKeys:
    """`make run`: dev keys in the state dir; this process signs as the admin UI and servicing and its
    worker trusts the ring (explicit OVERDUE_SIGNING_KEY_FILES / OVERDUE_TRUSTED_KEYS_FILE win)."""
    dev = ensure_dev_keys(state_dir)
    own = os.pathsep.join(str(dev.keys[signer]) for signer in ("admin", "servicing"))
    os.environ.setdefault("OVERDUE_SIGNING_KEY_FILES", own)
    os.environ.setdefault("OVERDUE_TRUSTED_KEYS_FILE", str(dev.trust))
    return dev
