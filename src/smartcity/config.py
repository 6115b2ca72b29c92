"""Settings: built once (from the command line, a config file and SMARTCITY_* variables)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartcity.core.duration_fields import DurationText, FixedPeriodText
from smartcity.opendata.model import Publisher, Text


class RetentionSetting(BaseModel):
    """One retention rule of the config file (ISO 8601 durations)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str | None = Field(None, description="entity type (short name or IRI); all if unset")
    attribute: str | None = Field(None, description="attribute; all if unset")
    raw: DurationText = Field(description="how long raw instances stay, e.g. P30D")
    aggregate: FixedPeriodText | None = Field(None, description="period they are then kept "
                                              "as, e.g. PT1H")
    keep_aggregates: DurationText | None = Field(None, description="how long aggregates "
                                                 "stay; forever if unset")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMARTCITY_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    db: str = Field("smartcity.db", description="SQLite file, ':memory:', or a "
                    "postgresql:// URL")
    workers: int = Field(1, ge=1, le=64, description="worker processes (PostgreSQL only)")
    event_bus: str = Field("local", pattern=r"^(local|nats://.+)$", description="'local' "
                           "(in-process), or the nats:// URL of NATS JetStream")
    event_bus_prefix: str = Field("smartcity", pattern=r"^[A-Za-z0-9_-]+$",
                                  description="names the stream, subject and consumer")
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0)
    default_limit: int = Field(20, gt=0)
    max_limit: int = Field(1000, gt=0)
    fetch_contexts: bool = Field(True, description="fetch user @context URLs over HTTP")
    context_fetch_timeout: float = Field(3.0, gt=0)
    history: bool = Field(True, description="record every attribute change as history")
    temporal_page_size: int = Field(
        10_000, gt=0, description="most attribute instances per entity in one temporal "
        "answer; more are cut by time and the answer is partial (206, Content-Range)")
    retention: tuple[RetentionSetting, ...] = ()
    retention_interval: float = Field(3600.0, gt=0, description="seconds between retention "
                                      "runs")
    mqtt_listener: bool = Field(True, description="run the embedded MQTT listener")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(1885, ge=1, le=65535, description="embedded MQTT listener port "
                           "(not 1883, which a real broker holds)")
    iot_mqtt: str = Field("", pattern=r"^(|off|mqtt://.+)$", description="the broker "
                          "devices publish measurements to: '' for the embedded listener "
                          "(when it runs), an mqtt:// URL (Mosquitto), or 'off'")
    command_timeout: float = Field(30.0, gt=0, description="seconds a device has to "
                                   "answer a command before it counts as failed")
    health_interval: float = Field(60.0, gt=0, description="seconds between checks for "
                                   "silent devices and low batteries")
    low_battery: float = Field(0.2, ge=0, le=1, description="battery level (0..1) below "
                               "which a device raises an alert")
    ingest_rate: float = Field(50.0, gt=0, description="measurements a second one device "
                               "may send, on average")
    ingest_burst: int = Field(200, gt=0, description="measurements one device may send "
                              "at once")
    auth: str = Field("on", pattern=r"^(on|none)$", description="'on': every request is "
                      "authenticated and checked against the policy; 'none' turns access "
                      "control off (local conformance runs only)")
    policy: Path | None = Field(None, description="the access policy and register of "
                                "personal data (TOML); the bundled default if unset")
    token_issuer: str = Field("smartcity", min_length=1, description="'iss' of the tokens "
                              "the platform issues")
    token_audience: str = Field("smartcity", min_length=1, description="'aud' the "
                                "platform's own tokens carry and require")
    token_lifetime: int = Field(3600, gt=0, le=86_400, description="seconds a token "
                                "the platform issues is valid")
    clock_skew: int = Field(60, ge=0, le=600, description="seconds of clock difference "
                            "allowed when checking a token's times")
    oidc_issuer: str = Field("", description="the city's OpenID Connect provider whose "
                             "tokens are accepted ('iss'); none if empty")
    oidc_audience: str = Field("", description="the 'aud' its tokens must carry")
    oidc_jwks_url: str = Field("", description="its signing keys (JWKS); found through "
                               "its discovery document if empty")
    oidc_roles_claim: str = Field("roles", description="claim (dotted path) holding "
                                  "platform roles, e.g. realm_access.roles")
    oidc_person_claim: str = Field("", description="claim holding the resident's entity "
                                   "id, if any")
    oidc_tenants_claim: str = Field("", description="claim listing the tenants the "
                                    "caller may reach, if any")
    controller: str = Field("the city", min_length=1, description="the data controller "
                            "the register of personal data names")
    publisher: Publisher = Field(Publisher(
        name=Text(sv="Exempelkommunen", en="Example Municipality"),
        organisation_number="000000-0000", homepage="https://example.org",
        email="opendata@example.org"), description="who publishes the open-data "
        "catalogue (organisation number as Bolagsverket gives it)")
    public_url: str = Field("", pattern=r"^(|https?://\S+)$", description="the address "
                            "the platform is reached at from outside, which names its "
                            "datasets (http://host:port if empty)")
    client_rate: float = Field(200.0, gt=0, description="requests a second one caller "
                               "may make, on average")
    client_burst: int = Field(400, gt=0, description="requests one caller may make at "
                              "once")
    log_level: str = "info"

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("oidc_issuer needs oidc_audience: tokens meant for other "
                             "services must not be accepted")
        return self


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from a JSON config file, overridden by explicit values."""
    values: dict[str, Any] = {}
    if config_file is not None:
        raw = config_file.read_bytes()
        try:
            values.update(tomllib.loads(raw.decode()) if config_file.suffix == ".toml"
                          else orjson.loads(raw))
        except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{config_file} cannot be read: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
