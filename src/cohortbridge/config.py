"""Settings: the only module that reads the environment.

Every process (``up``, ``serve``, ``worker``, the CLI) builds one ``Settings`` and passes it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Side = Literal["engage", "analytics"]
SIDES: tuple[Side, ...] = ("engage", "analytics")


class RateLimits(BaseSettings):
    """Per-workspace request limits of engage, as Braze's defaults (spec braze §3.2).

    Each is (requests, window seconds).
    """

    model_config = SettingsConfigDict(env_prefix="COHORTBRIDGE_RATE_", extra="ignore")

    users_track: int = 3000
    users_track_window: int = 3
    users_identity: int = 20000
    users_identity_window: int = 60
    users_export_ids: int = 250
    users_export_ids_window: int = 60
    default: int = 250000
    default_window: int = 3600
    # Partner cohort import: 250,000 requests per hour per workspace (spec braze §1.6).
    cohort_import: int = 250000
    cohort_import_window: int = 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COHORTBRIDGE_", extra="ignore")

    data_dir: Path = Field(default=Path("./var"))
    engage_database_url: str | None = None
    analytics_database_url: str | None = None
    engage_host: str = "127.0.0.1"
    engage_port: int = 8400
    analytics_host: str = "127.0.0.1"
    analytics_port: int = 8401
    engage_public_url: str | None = None
    analytics_public_url: str | None = None
    # Largest request body engage accepts on /users/* (spec braze §3.1: 4 MB → 413).
    max_body_bytes: int = 4 * 1024 * 1024
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    # How long a cohort import request waits for another one on the same cohort before it
    # answers 423 Resource locked (which partners retry).
    cohort_lock_timeout_s: float = 30.0
    # How long the download URL of a segment export stays valid (Braze: "a few hours").
    export_url_ttl_s: int = 6 * 3600
    log_level: str = "info"
    # analytics ingestion (spec amplitude §1.5): events per second per device and per user,
    # averaged over the window, for HTTP V2 and Batch; events per device or user per 24 hours.
    ingest_eps_http: int = 30
    ingest_eps_batch: int = 1000
    ingest_throttle_window_s: int = 30
    ingest_daily_quota: int = 500_000
    ingest_max_http_bytes: int = 1024 * 1024
    ingest_max_batch_bytes: int = 20 * 1024 * 1024
    ingest_max_events: int = 2000
    # Events older than this many days are deleted (None keeps them all).
    event_retention_days: int | None = None
    # How often analytics prunes insert ids and expired events.
    maintenance_interval_s: float = 3600.0
    # How often analytics looks for cohorts due for computation (each has its own refresh).
    cohort_tick_s: float = 60.0
    # How often analytics forwards what its event streams' outboxes hold (each round drains them).
    stream_tick_s: float = 1.0
    # How long a call to a destination (engage) may take before it counts as a timeout.
    destination_timeout_s: float = 30.0
    # Whether the analytics API process runs the periodic jobs itself (the embedded default);
    # turn off where `cohortbridge worker` processes run them.
    jobs_in_server: bool = True
    # `cohortbridge worker` on PostgreSQL (procrastinate): jobs run at once per process, and
    # how long a worker may go without a heartbeat before its jobs are run again elsewhere.
    worker_concurrency: int = Field(default=4, ge=1)
    worker_stalled_after_s: float = Field(default=30.0, ge=1.0)

    def database_url(self, side: Side) -> str:
        explicit = self.engage_database_url if side == "engage" else self.analytics_database_url
        if explicit:
            return explicit
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{side}.db').resolve()}"

    def public_url(self, side: Side) -> str:
        explicit = self.engage_public_url if side == "engage" else self.analytics_public_url
        if explicit:
            return explicit.rstrip("/")
        host, port = (
            (self.engage_host, self.engage_port)
            if side == "engage"
            else (self.analytics_host, self.analytics_port)
        )
        return f"http://{host}:{port}"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def cohort_downloads_dir(self) -> Path:
        return self.data_dir / "cohort-downloads"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir
