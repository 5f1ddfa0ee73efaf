"""Configuration of the worker and the API, from `WEBHOOKS_*` variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.delivery import ATTEMPT_TIMEOUT_SECONDS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", env_file=".env", extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "webhooks"
    api_port: int = 8000
    api_token: SecretStr | None = None
    temporal_ui_url: str = "http://localhost:8233"

    retry_initial_interval: Annotated[float, Field(gt=0)] = 10.0
    retry_backoff: Annotated[float, Field(ge=1.0)] = 2.0
    retry_max_interval: Annotated[float, Field(gt=0)] = 3600.0
    http_timeout: Annotated[float, Field(gt=0, le=ATTEMPT_TIMEOUT_SECONDS - 10)] = 10.0


@lru_cache
def get_settings() -> Settings:
    return Settings()
