"""Settings from the environment. Unset TEMPORAL_ADDRESS / DATABASE_URL mean: use the embedded servers."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The placeholder link the message templates use until an operator sets OVERDUE_PAY_URL.
DEFAULT_PAY_URL = "https://pay.example.com/loans/{loan_id}"

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_ADDRESS", "OVERDUE_TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(
        default="default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "OVERDUE_TEMPORAL_NAMESPACE")
    )
    temporal_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_API_KEY", "OVERDUE_TEMPORAL_API_KEY")
    )
    temporal_tls: bool = Field(
        default=False, validation_alias=AliasChoices("TEMPORAL_TLS", "OVERDUE_TEMPORAL_TLS")
    )
    # TLS to a frontend with a private CA, and mTLS (README "Connecting to Temporal"). The names are the
    # `temporal` CLI's own, so one environment serves the product and the CLI of the release jobs. Any of
    # them turns TLS on; starter.connect.tls_config reads the files and names the setting that is wrong.
    temporal_tls_server_ca_cert_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "OVERDUE_TEMPORAL_TLS_SERVER_CA_CERT_PATH"
        ),
        description="PEM bundle of the CA(s) that signed the frontend's certificate; unset: default roots",
    )
    temporal_tls_client_cert_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "TEMPORAL_TLS_CLIENT_CERT_PATH", "OVERDUE_TEMPORAL_TLS_CLIENT_CERT_PATH"
        ),
        description="PEM client certificate (chain) for mTLS; needs TEMPORAL_TLS_CLIENT_KEY_PATH",
    )
    temporal_tls_client_key_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_TLS_CLIENT_KEY_PATH", "OVERDUE_TEMPORAL_TLS_CLIENT_KEY_PATH"),
        description="PEM private key of the client certificate (mTLS)",
    )
    temporal_tls_server_name: str | None = Field(
        default=None,
        min_length=1,
        validation_alias=AliasChoices("TEMPORAL_TLS_SERVER_NAME", "OVERDUE_TEMPORAL_TLS_SERVER_NAME"),
        description="the name the frontend's certificate carries, when it is not the host dialled",
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "OVERDUE_DATABASE_URL")
    )
    task_queue: str = "collections"
    state_dir: Path = ROOT / ".state"
    strategy_file: Path = ROOT / "strategies" / "default.toml"
    contact_profiles_file: Path = ROOT / "strategies" / "contact_profiles.toml"
    demo_day_seconds: float | None = Field(
        default=None, gt=0, description="DEMO ONLY: real seconds per collections day; unset in production"
    )
    pay_url: str = Field(
        default=DEFAULT_PAY_URL,
        description="the borrower's payment link in messages; {loan_id} is filled in. Set it to your own.",
    )
    max_overdue_years: int = Field(
        default=10, ge=1, le=100, description="a loan whose overdue_since is further back is refused at start"
    )
    max_concurrent_activities: int = Field(default=50, ge=1)
    max_concurrent_workflow_tasks: int = Field(default=50, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Worker Versioning (stack/versioning.py; README "Connecting to Temporal"). Off while the deployment name
    # is unset: the worker polls unversioned, as `make run` and the tests do.
    worker_deployment_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^/\s]+$",  # the server joins name and build id with a "." in the canonical version
        description="the Worker Deployment this worker belongs to; unset: unversioned worker",
    )
    worker_build_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\s]+$",
        description="this worker's build; unset: the package version + a hash of the workflow code",
    )
    worker_versioning_behavior: Literal["pinned", "auto_upgrade"] = Field(
        default="pinned",
        description="for workflows that do not declare one: pinned runs finish on the build they started on",
    )
    log_level: str = "INFO"

    @property
    def embedded_temporal(self) -> bool:
        return not self.temporal_address

    @property
    def embedded_postgres(self) -> bool:
        return not self.database_url

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or "localhost:7233"

    # Retention periods: the contact profiles' retention_years (one per jurisdiction) and
    # privacy.erasure.RetentionSettings (docs/personal-data.md).

    # --- Borrower message channels (activities/channels; README "Channels") ---------------------------------
    # A channel delivers through its provider when that provider is configured; a channel without one keeps
    # its messages queued in the outbox. `make run` points unconfigured channels at local sandboxes.
    smtp_host: str | None = Field(default=None, description="e-mail via this SMTP server; unset: queued")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_tls: str = Field(default="starttls", pattern="^(starttls|implicit|none)$")
    smtp_from: str = Field(default="Overdue Collections <collections@example.com>", min_length=3)
    sms_gateway_url: str | None = Field(default=None, description="SMS via this HTTP gateway; unset: queued")
    sms_api_key: str | None = Field(default=None, repr=False)
    sms_api_key_header: str = "X-API-Key"
    sms_sender: str = "Overdue"
    push_webhook_url: str | None = Field(default=None, description="app push via this webhook; unset: queued")
    push_webhook_secret: str | None = Field(default=None, repr=False, description="HMAC-SHA256 key")
    channel_timeout_seconds: float = Field(
        default=10.0, gt=0, le=25, description="one delivery, all of it; below the activity's 30 s timeout"
    )
    # `make run` only: local stand-ins (stack/sandbox) for the providers left unset, bound to 127.0.0.1.
    sandbox_channels: bool = True
    sandbox_smtp_port: int = Field(default=1025, ge=0, le=65535)
    sandbox_mailbox_port: int = Field(default=8025, ge=0, le=65535)
    sandbox_sms_port: int = Field(default=8026, ge=0, le=65535)
    sandbox_push_port: int = Field(default=8027, ge=0, le=65535)

    # --- Legal documents (activities/legal.py; README "Legal documents") ------------------------------------
    law_firm_name: str = Field(
        default="示例律师事务所 (Demo Law Firm)",
        min_length=1,
        max_length=200,
        description="the law firm that signs the lawyer's letter; the default is a demo name, set your own",
    )

    # --- Collection agencies (activities/agency.py, activities/agency_http.py; README "Agencies") ----------
    # The agencies are data (this file, synced into the `agencies` table when a worker starts). API keys are
    # not in the file: an agency's `api_key_env` names the variable holding its key, else
    # OVERDUE_AGENCY_API_KEY.
    agencies_file: Path = ROOT / "strategies" / "agencies.toml"
    agency_api_key: str | None = Field(
        default=None, repr=False, description="for agencies without api_key_env"
    )
    agency_api_key_header: str = Field(default="X-API-Key", min_length=1)
    agency_timeout_seconds: float = Field(
        default=15.0, gt=0, le=50, description="one agency API call, all of it; below the activity's 60 s"
    )
    agency_sandbox_url: str | None = Field(
        default=None,
        description="what endpoint 'sandbox' means (make run sets it); unset: 127.0.0.1:sandbox_agency_port",
    )
    # `make run` only: the local sandbox agency (stack/sandbox/agency.py) on 127.0.0.1 (0: any free port).
    sandbox_agency_port: int = Field(default=8028, ge=0, le=65535)
