"""The API's own knobs (``CROWDBRIDGE_API_*``), separate from the pipeline's ``Settings``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiConfig"]


class ApiConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROWDBRIDGE_API_", extra="ignore")

    max_upload_bytes: int = Field(64 << 20, ge=1, description="largest item upload accepted (413 above)")
    max_webhook_bytes: int = Field(1 << 20, ge=1, description="largest webhook body accepted (413 above)")
    page_limit_max: int = Field(1000, ge=1, description="largest page a list route returns")
