"""Configuration of the worker and the API, from `WEBHOOKS_*` variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.activity_contract import ATTEMPT_TIMEOUT_SECONDS
from domain.delivery import ACCOUNT_PATTERN, DEFAULT_ACCOUNT
from domain.endpoints import HealthPolicy
from infra.codec import AesGcmCodec, parse_key

AccountName = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", env_file=".env", extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "webhooks"
    api_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # One token for the `default` account, and/or tokens of named accounts:
    # WEBHOOKS_API_TOKENS='{"shop-a": "<token>", "shop-b": "<token>"}'.
    api_token: SecretStr | None = None
    api_tokens: dict[AccountName, SecretStr] = {}
    temporal_ui_url: str = "http://localhost:8233"

    # Base64url AES-256 key for what is stored in Temporal; old keys still decrypt
    # (WEBHOOKS_ENCRYPTION_OLD_KEYS='["<key>", …]').
    encryption_key: SecretStr | None = None
    encryption_old_keys: list[SecretStr] = []
    allow_private_networks: bool = False
    # Where the worker serves Prometheus metrics (SDK and delivery metrics); unset = none. The
    # address is loopback unless set (a container's scraper needs 0.0.0.0, as docker-compose.yml sets).
    worker_metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    worker_metrics_host: str = "127.0.0.1"
    # Workflows a worker keeps in memory between their tasks. A delivery needs a
    # place only from its first task to its last, milliseconds when the endpoint
    # answers; one waiting out a retry is evicted and replayed (11 events) when
    # the retry comes. Bounds the worker's memory whatever the backlog.
    worker_cached_workflows: Annotated[int, Field(ge=2)] = 100
    log_format: Literal["json", "text"] = "json"
    # An endpoint is disabled after this many failed deliveries in a row (0 = never)
    # spanning at least this many hours; its events are then recorded as skipped.
    disable_after_failures: Annotated[int, Field(ge=0)] = 50
    disable_after_hours: Annotated[float, Field(ge=0)] = 24.0
    # How long a rotated signing secret keeps signing beside its successor.
    signing_secret_grace_hours: Annotated[float, Field(ge=0, le=24 * 30)] = 24.0

    retry_initial_interval: Annotated[float, Field(gt=0)] = 10.0
    retry_backoff: Annotated[float, Field(ge=1.0)] = 2.0
    retry_max_interval: Annotated[float, Field(gt=0)] = 3600.0
    http_timeout: Annotated[float, Field(gt=0, le=ATTEMPT_TIMEOUT_SECONDS - 10)] = 10.0

    @field_validator("encryption_key", "encryption_old_keys")
    @classmethod
    def _keys_parse(cls, value: SecretStr | list[SecretStr] | None) -> SecretStr | list[SecretStr] | None:
        for key in value if isinstance(value, list) else [value] if value else []:
            parse_key(key.get_secret_value())
        return value

    def account_tokens(self) -> list[tuple[str, SecretStr]]:
        tokens = [(DEFAULT_ACCOUNT, self.api_token)] if self.api_token else []
        return tokens + list(self.api_tokens.items())

    def health_policy(self) -> HealthPolicy:
        return HealthPolicy(failures=self.disable_after_failures, seconds=self.disable_after_hours * 3600)

    def codec(self) -> AesGcmCodec:
        if self.encryption_key is None:
            raise RuntimeError(
                "WEBHOOKS_ENCRYPTION_KEY is not set: everything stored in Temporal is encrypted with it. "
                "Create one with: python -c 'from infra.codec import new_key; print(new_key())'"
            )
        return AesGcmCodec(
            parse_key(self.encryption_key.get_secret_value()),
            [parse_key(k.get_secret_value()) for k in self.encryption_old_keys],
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
