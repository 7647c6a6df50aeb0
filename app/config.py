"""Configuration: the one reader of the process environment.

Server settings (`Settings`, from ARCA_* variables, read once per process) and the client side of
the `arca` CLI (`ClientSettings`: endpoint and region, as the AWS CLI finds them). No other module
reads `os.environ`."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

EXTERNAL_DEFAULTS = {
    "public:pypi": "https://pypi.org/simple/",
    "public:npmjs": "https://registry.npmjs.org/",
    "public:maven-central": "https://repo1.maven.org/maven2/",
    "public:maven-googleandroid": "https://maven.google.com/",
    "public:maven-gradleplugins": "https://plugins.gradle.org/m2/",
    "public:maven-commonsware": "https://repo.commonsware.com/",
    "public:maven-clojars": "https://repo.clojars.org/",
}
DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_REGION = "us-east-1"


class SettingError(ValueError):
    """A setting with a value Arca cannot use; the message names the variable."""


def _number(env: Mapping[str, str], name: str, default: float, kind=int):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingError(f"{name} must be a {'whole ' if kind is int else ''}number, not {raw!r}") from None


def _at_least(env: Mapping[str, str], name: str, default: float, minimum: float, kind=int):
    value = _number(env, name, default, kind)
    if value < minimum:
        raise SettingError(f"{name} must be at least {minimum}, not {value}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def external_env_name(connection: str) -> str:
    """`public:maven-central` → `ARCA_EXTERNAL_PUBLIC_MAVEN_CENTRAL`."""
    return "ARCA_EXTERNAL_" + connection.upper().replace(":", "_").replace("-", "_")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    blob_store: str
    account_id: str
    region: str | None
    base_url: str | None
    secret_key_env: str | None
    s3_endpoint_url: str | None
    max_upload_bytes: int
    npm_max_publish_bytes: int
    npm_max_unpacked_bytes: int = 512 * 1024**2
    s3_presigned_downloads: bool = False
    # external connection name -> remote URL, and the extra URL prefixes a remote may link to
    external: dict[str, str] = field(default_factory=dict)
    external_allow: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # upstream HTTP client
    upstream_timeout: float = 5.0
    upstream_max_age: float = 300.0
    upstream_breaker_failures: int = 3
    upstream_breaker_seconds: float = 30.0
    # a remote's domain token (custom connections) is renewed this many seconds before it expires
    upstream_token_refresh: float = 600.0
    # serving
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_level: str = "info"
    log_format: str = "text"
    metrics_token: str | None = None
    webhooks: bool = True
    # a client that stops sending is dropped after these many seconds (headers / a pause in a body)
    request_header_timeout: float = 30.0
    request_body_timeout: float = 30.0
    # console sign-in: failures allowed per user name / per client address within the window (0 = no
    # limit), then refused for the lockout (seconds); the largest console form body (bytes)
    signin_max_failures: int = 5
    signin_max_failures_per_address: int = 20
    signin_window: float = 900.0
    signin_lockout: float = 900.0
    console_max_form_bytes: int = 16 * 1024
    # lifecycle: how often the cleanup rules run (seconds; 0 = only `arca admin cleanup`), how often each
    # process writes the download times it collected (seconds)
    cleanup_interval: float = 86400.0
    download_flush_seconds: float = 60.0
    # Maven: how long a checksum (or a publishing maven-metadata.xml) that came before its file waits
    # for that file
    maven_hold_seconds: float = 3600.0

    @property
    def secret_key(self) -> str:
        return load_secret_key(self)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("ARCA_DATA_DIR") or "./storage").resolve()
    db_url = env.get("ARCA_DATABASE_URL") or f"sqlite:///{data_dir / 'arca.db'}"
    external = dict(EXTERNAL_DEFAULTS)
    for name in list(external):
        if env.get(external_env_name(name)):
            external[name] = env[external_env_name(name)]
    allow = {}
    for name in external:
        raw = env.get(external_env_name(name) + "_ALLOW") or ""
        allow[name] = tuple(p if p.endswith("/") else p + "/" for p in (x.strip() for x in raw.split(",")) if p)
    return Settings(
        data_dir=data_dir,
        database_url=db_url,
        blob_store=env.get("ARCA_BLOB_STORE") or "file",
        account_id=env.get("ARCA_ACCOUNT_ID") or "000000000000",
        region=env.get("ARCA_REGION") or None,
        base_url=(env.get("ARCA_BASE_URL") or "").rstrip("/") or None,
        secret_key_env=env.get("ARCA_SECRET_KEY") or None,
        s3_endpoint_url=env.get("ARCA_S3_ENDPOINT_URL") or None,
        max_upload_bytes=_number(env, "ARCA_MAX_UPLOAD_BYTES", 5 * 1024**3),
        npm_max_publish_bytes=_number(env, "ARCA_NPM_MAX_PUBLISH_BYTES", 256 * 1024**2),
        npm_max_unpacked_bytes=_number(env, "ARCA_NPM_MAX_UNPACKED_BYTES", 512 * 1024**2),
        maven_hold_seconds=_number(env, "ARCA_MAVEN_HOLD_SECONDS", 3600.0, float),
        s3_presigned_downloads=_flag(env, "ARCA_S3_PRESIGNED_DOWNLOADS", False),
        external=external,
        external_allow=allow,
        upstream_timeout=_number(env, "ARCA_UPSTREAM_TIMEOUT", 5.0, float),
        upstream_max_age=_number(env, "ARCA_UPSTREAM_MAX_AGE", 300.0, float),
        upstream_breaker_failures=int(_number(env, "ARCA_UPSTREAM_BREAKER_FAILURES", 3.0, float)),
        upstream_breaker_seconds=_number(env, "ARCA_UPSTREAM_BREAKER_SECONDS", 30.0, float),
        upstream_token_refresh=_number(env, "ARCA_UPSTREAM_TOKEN_REFRESH_SECONDS", 600.0, float),
        host=env.get("ARCA_HOST") or "127.0.0.1",
        port=_number(env, "ARCA_PORT", 8080),
        workers=_number(env, "ARCA_WORKERS", 1),
        log_level=env.get("ARCA_LOG_LEVEL") or "info",
        log_format=(env.get("ARCA_LOG_FORMAT") or "text").lower(),
        metrics_token=env.get("ARCA_METRICS_TOKEN") or None,
        webhooks=(env.get("ARCA_WEBHOOKS") or "1") != "0",
        request_header_timeout=_number(env, "ARCA_REQUEST_HEADER_TIMEOUT", 30.0, float),
        request_body_timeout=_number(env, "ARCA_REQUEST_BODY_TIMEOUT", 30.0, float),
        signin_max_failures=_at_least(env, "ARCA_SIGNIN_MAX_FAILURES", 5, 0),
        signin_max_failures_per_address=_at_least(env, "ARCA_SIGNIN_MAX_FAILURES_PER_ADDRESS", 20, 0),
        signin_window=_at_least(env, "ARCA_SIGNIN_WINDOW", 900.0, 1, float),
        signin_lockout=_at_least(env, "ARCA_SIGNIN_LOCKOUT", 900.0, 1, float),
        console_max_form_bytes=_at_least(env, "ARCA_CONSOLE_MAX_FORM_BYTES", 16 * 1024, 1024),
        cleanup_interval=_at_least(env, "ARCA_CLEANUP_INTERVAL", 86400.0, 0, float),
        download_flush_seconds=_at_least(env, "ARCA_DOWNLOAD_FLUSH_SECONDS", 60.0, 0.1, float),
    )


@lru_cache(maxsize=8)
def _secret_from_file(path: str) -> str:
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting at once must agree on one key.
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
    return p.read_text().strip()


def load_secret_key(settings: Settings) -> str:
    """ARCA_SECRET_KEY, or a key generated once into the data dir (mode 0600)."""
    if settings.secret_key_env:
        return settings.secret_key_env
    return _secret_from_file(str(settings.data_dir / "secret.key"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()


# ---- metrics across worker processes ---------------------------------------------------------------

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir() -> str | None:
    """prometheus_client's multiprocess directory, when this process shares its metrics."""
    return os.environ.get(METRICS_DIR_VARIABLE) or None


def share_metrics_dir(data_dir: Path) -> str:
    """Make (or reuse) the multiprocess directory and export it to the workers about to start,
    emptied of an earlier run's samples."""
    path = metrics_dir()
    if path is None:
        base = data_dir / "metrics"
        base.mkdir(parents=True, exist_ok=True)
        path = os.environ[METRICS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="run-", dir=base)
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        shutil.rmtree(full, ignore_errors=True) if os.path.isdir(full) else os.unlink(full)
    return path


# ---- the CLI as a client -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientSettings:
    """Where the `arca` CLI sends its API calls, and the home of the client tools it configures."""

    endpoint_url: str
    region: str
    environ: Mapping[str, str]


def client_settings(endpoint_url: str | None = None, region: str | None = None,
                    env: Mapping[str, str] | None = None) -> ClientSettings:
    env = os.environ if env is None else env
    return ClientSettings(
        endpoint_url=endpoint_url or env.get("ARCA_ENDPOINT_URL") or DEFAULT_ENDPOINT,
        region=region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        environ=env,
    )
