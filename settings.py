"""Configuration of the worker and the API, from `WEBHOOKS_*` variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.activity_contract import ATTEMPT_TIMEOUT_SECONDS
from domain.delivery import ACCOUNT_PATTERN, DEFAULT_ACCOUNT
from domain.endpoints import HealthPolicy
from domain.retry import Backoff
from infra.codec import AesGcmCodec, parse_key
from infra.secrets import SecretBox

AccountName = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]


class Settings(BaseSettings):
    # A refused setting must not print its value: it may be a key or a token.
    model_config = SettingsConfigDict(
        env_prefix="WEBHOOKS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "webhooks"
    api_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # One token for the `default` account, and/or tokens of named accounts:
    # WEBHOOKS_API_TOKENS='{"shop-a": "<token>", "shop-b": "<token>"}'.
    api_token: SecretStr | None = None
    api_tokens: dict[AccountName, SecretStr] = {}
    temporal_ui_url: str = "http://localhost:8233"
    # The codec server (Temporal's codec protocol, for the Web UI and the CLI) listens on
    # its own port, never on the API's: decoding is an operator's right, not a merchant's.
    codec_port: Annotated[int, Field(ge=1, le=65535)] = 8081
    # With a token, the codec server answers only `Authorization: Bearer <operator token>`;
    # without one, whoever reaches its port (loopback by default: the operator network).
    operator_token: SecretStr | None = None
    # The API's /metrics count every account's traffic: with this token, only its bearer reads
    # them; without one, only an API with no merchant tokens (local use) serves them.
    metrics_token: SecretStr | None = None

    # Base64url AES-256 key for what is stored in Temporal; old keys still decrypt
    # (WEBHOOKS_ENCRYPTION_OLD_KEYS='["<key>", …]').
    encryption_key: SecretStr | None = None
    encryption_old_keys: list[SecretStr] = []
    # Base64url AES-256 key that seals endpoint credentials inside what is stored; the
    # API and the workers hold it, the codec server does not (WEBHOOKS_SECRETS_OLD_KEYS too).
    secrets_key: SecretStr | None = None
    secrets_old_keys: list[SecretStr] = []
    allow_private_networks: bool = False
    # Where the worker serves Prometheus metrics (SDK and delivery metrics); unset = none. The
    # address is loopback unless set (a container's scraper needs 0.0.0.0, as docker-compose.yml sets).
    worker_metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    worker_metrics_host: str = "127.0.0.1"
    # Where the worker answers its health check (GET /healthz on 127.0.0.1); unset = none.
    worker_health_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    # Workflows a worker keeps in memory between their tasks. A delivery needs a
    # place only from its first task to its last, milliseconds when the endpoint
    # answers; one waiting out a retry is evicted and replayed (11 events) when
    # the retry comes. Bounds the worker's memory whatever the backlog: the newest
    # deliveries waiting out a retry stay cached until newer ones push them out, at
    # ~0.25 MiB each (bench backlog, 2,000 in backoff: +29 MiB at 100, +13 MiB at 50).
    worker_cached_workflows: Annotated[int, Field(ge=2)] = 50
    # Retries' attempts (POSTs) a worker runs at once, and as many first attempts (local
    # activities) beside them. The rest wait in Temporal's task queue, where priority and
    # the accounts' fairness decide which goes next; a task a worker has taken is served
    # in its turn there.
    worker_max_activities: Annotated[int, Field(ge=1)] = 100
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
    # The longest Retry-After honoured; not capped by retry_max_interval.
    retry_after_max: Annotated[float, Field(gt=0)] = 7200.0
    http_timeout: Annotated[float, Field(gt=0, le=ATTEMPT_TIMEOUT_SECONDS - 10)] = 10.0

    @field_validator("encryption_key", "encryption_old_keys", "secrets_key", "secrets_old_keys")
    @classmethod
    def _keys_parse(cls, value: SecretStr | list[SecretStr] | None) -> SecretStr | list[SecretStr] | None:
        for key in value if isinstance(value, list) else [value] if value else []:
            parse_key(key.get_secret_value())
        return value

    @field_validator("operator_token", "metrics_token")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # Compose passes an unset variable as "": that must not become a token anyone can send.
        return value if value and value.get_secret_value() else None

    @model_validator(mode="after")
    def _secrets_key_is_its_own(self) -> Self:
        # The codec server holds the encryption keys: the same key would open the credentials to it.
        payload_keys = {k.get_secret_value() for k in [self.encryption_key, *self.encryption_old_keys] if k}
        if any(k.get_secret_value() in payload_keys for k in [self.secrets_key, *self.secrets_old_keys] if k):
            raise ValueError("WEBHOOKS_SECRETS_KEY must differ from WEBHOOKS_ENCRYPTION_KEY and its old keys")
        return self

    @field_validator("api_token")
    @classmethod
    def _empty_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value and value.get_secret_value() else None

    @field_validator("api_tokens")
    @classmethod
    def _each_account_has_a_token(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        # An empty token would be what a caller without any token sends: that account open to all.
        if empty := [name for name, token in value.items() if not token.get_secret_value()]:
            raise ValueError(f"WEBHOOKS_API_TOKENS: empty token for account {empty[0]}")
        return value

    @model_validator(mode="after")
    def _each_token_names_one_account(self) -> Self:
        # A token shared by two accounts would open the second's endpoints and log to the first.
        seen: dict[str, str] = {}
        for name, token in self.account_tokens():
            if (other := seen.setdefault(token.get_secret_value(), name)) != name:
                raise ValueError(f"WEBHOOKS_API_TOKENS: accounts {other} and {name} have the same token")
        return self

    @model_validator(mode="after")
    def _guards_are_not_merchants(self) -> Self:
        # A merchant holding the operator token would decode every account; the metrics token,
        # read every account's volume.
        merchants = {t.get_secret_value() for _, t in self.account_tokens()}
        guards = [("WEBHOOKS_OPERATOR_TOKEN", self.operator_token), ("WEBHOOKS_METRICS_TOKEN", self.metrics_token)]
        for name, token in guards:
            if token is not None and token.get_secret_value() in merchants:
                raise ValueError(f"{name} must differ from every merchant token")
        return self

    def account_tokens(self) -> list[tuple[str, SecretStr]]:
        tokens = [(DEFAULT_ACCOUNT, self.api_token)] if self.api_token else []
        return tokens + list(self.api_tokens.items())

    def backoff(self) -> Backoff:
        return Backoff(self.retry_initial_interval, self.retry_backoff, self.retry_max_interval, self.retry_after_max)

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

    def secret_box(self) -> SecretBox:
        if self.secrets_key is None:
            raise RuntimeError(
                "WEBHOOKS_SECRETS_KEY is not set: endpoint credentials are sealed with it (the API and the worker). "
                "Create one with: python -c 'from infra.codec import new_key; print(new_key())'"
            )
        return SecretBox(
            parse_key(self.secrets_key.get_secret_value()),
            [parse_key(k.get_secret_value()) for k in self.secrets_old_keys],
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
