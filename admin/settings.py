"""Settings of the admin UI, from the environment (OVERDUE_ADMIN_*); Temporal and PostgreSQL come from
`stack.settings.Settings` like every other part of the product."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_ADMIN_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: str | None = Field(
        default=None,
        repr=False,
        min_length=32,
        description="encrypts users' TOTP secrets (sessions are server-side and need no key); unset: TOTP "
        "cannot be enrolled (its secrets would be unreadable after a restart). Set it in production.",
    )
    secure_cookies: bool = Field(
        default=False,
        description="send the session cookie only over HTTPS: set it when served behind TLS (requests that "
        "arrive over https get Secure cookies anyway)",
    )
    session_hours: float = Field(
        default=10, gt=0, le=24 * 7, description="absolute lifetime of a session, however active"
    )
    session_idle_minutes: float = Field(
        default=30, gt=0, le=24 * 60, description="a session without a request for this long has ended"
    )
    max_failed_logins: int = Field(
        default=5,
        ge=1,
        description="failed logins of one account from one client address (within failure_window_seconds) "
        "that pause that account's logins from that address; other addresses are not affected",
    )
    max_failed_logins_per_address: int = Field(
        default=30,
        ge=1,
        description="failed logins from one client address, over any accounts, that pause every login "
        "from that address",
    )
    failure_window_seconds: int = Field(default=900, ge=1, description="how long failures are counted")
    lockout_seconds: int = Field(
        default=300, ge=1, description="how long a paused pair or address stays paused"
    )
    require_totp: bool = Field(
        default=False,
        description="supervisors and admins must log in with a TOTP code (they enrol at their next login)",
    )
    temporal_ui_url: str | None = Field(
        default=None, description="the Temporal Web UI, for links to a loan's workflow page"
    )
