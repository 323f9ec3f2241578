"""Settings from the environment. Unset TEMPORAL_ADDRESS / DATABASE_URL mean: use the embedded servers."""

from __future__ import annotations

from pathlib import Path

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
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "OVERDUE_DATABASE_URL")
    )
    task_queue: str = "collections"
    state_dir: Path = ROOT / ".state"
    strategy_file: Path = ROOT / "strategies" / "default.toml"
    demo_day_seconds: float | None = Field(
        default=None, gt=0, description="DEMO ONLY: real seconds per collections day; unset in production"
    )
    pay_url: str = Field(
        default=DEFAULT_PAY_URL,
        description="the borrower's payment link in messages; {loan_id} is filled in. Set it to your own.",
    )
    max_concurrent_activities: int = Field(default=50, ge=1)
    max_concurrent_workflow_tasks: int = Field(default=50, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
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
