"""Where a process finds its signing keys and the worker its trusted public keys (OVERDUE_ environment)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from authority.keys import KeyFileError, SigningKey, TrustedKeys, read_json

ROOT = Path(__file__).resolve().parents[1]
DEV_DIR = "authority"  # under the state dir: the dev keys `make run` creates


class AuthoritySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    signing_key_files: str = Field(
        default="",
        description="this process's signing key files, separated by ':' (admin UI: its key; CLI: the "
        "operator's; servicing: servicing's)",
    )
    signing_key: SecretStr | None = Field(
        default=None, description="signing key(s) as inline JSON, one object or a list (a secret manager)"
    )
    trusted_keys_file: Path | None = Field(default=None, description="the worker's trust ring (public keys)")
    trusted_keys: str | None = Field(default=None, description="the trust ring as inline JSON")
    assertion_ttl_seconds: int = Field(default=600, ge=30, le=900, description="lifetime of a token")
    state_dir: Path = ROOT / ".state"

    def signing_keys(self, dev_fallback: tuple[str, ...] = ()) -> list[SigningKey]:
        """The configured signing keys; none configured, the dev keys `make run` left in the state dir for
        the signers named by `dev_fallback` (the CLI: "operator")."""
        keys = [
            SigningKey.from_json(read_json(Path(p), "signing key file"), f"signing key file {p}")
            for p in self.signing_key_files.split(os.pathsep)
            if p.strip()
        ]
        if self.signing_key is not None:
            try:
                entry = json.loads(self.signing_key.get_secret_value())
            except json.JSONDecodeError:
                raise KeyFileError("OVERDUE_SIGNING_KEY: not JSON") from None
            entries = entry if isinstance(entry, list) else [entry]
            keys += [SigningKey.from_json(e, f"OVERDUE_SIGNING_KEY[{n}]") for n, e in enumerate(entries)]
        if not keys:
            for signer in dev_fallback:
                path = self.state_dir / DEV_DIR / f"{signer}.key"
                if path.exists():
                    keys.append(SigningKey.from_json(read_json(path, "dev key"), f"dev key {path}"))
        return keys

    def trust(self) -> TrustedKeys:
        """The trust ring; empty when none is configured (then every assertion is refused)."""
        if self.trusted_keys:
            try:
                document = json.loads(self.trusted_keys)
            except json.JSONDecodeError:
                raise KeyFileError("OVERDUE_TRUSTED_KEYS: not JSON") from None
            return TrustedKeys.from_json(document, "OVERDUE_TRUSTED_KEYS")
        if self.trusted_keys_file is not None:
            path = self.trusted_keys_file
            return TrustedKeys.from_json(read_json(path, "trusted keys file"), f"trusted keys file {path}")
        return TrustedKeys()
