"""Configuration from ARCA_* environment variables (one place, read once per process)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

EXTERNAL_DEFAULTS = {
    "public:pypi": "https://pypi.org/simple/",
    "public:npmjs": "https://registry.npmjs.org/",
    "public:maven-central": "https://repo1.maven.org/maven2/",
}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


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
    s3_presigned_downloads: bool = False
    external: dict[str, str] = field(default_factory=dict)

    @property
    def secret_key(self) -> str:
        return load_secret_key(self)


def settings_from_env(env: os._Environ | dict | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("ARCA_DATA_DIR") or "./storage").resolve()
    db_url = env.get("ARCA_DATABASE_URL") or f"sqlite:///{data_dir / 'arca.db'}"
    external = dict(EXTERNAL_DEFAULTS)
    for name in list(external):
        key = "ARCA_EXTERNAL_" + name.upper().replace(":", "_").replace("-", "_")
        if env.get(key):
            external[name] = env[key]
    return Settings(
        data_dir=data_dir,
        database_url=db_url,
        blob_store=env.get("ARCA_BLOB_STORE") or "file",
        account_id=env.get("ARCA_ACCOUNT_ID") or "000000000000",
        region=env.get("ARCA_REGION") or None,
        base_url=(env.get("ARCA_BASE_URL") or "").rstrip("/") or None,
        secret_key_env=env.get("ARCA_SECRET_KEY") or None,
        s3_endpoint_url=env.get("ARCA_S3_ENDPOINT_URL") or None,
        max_upload_bytes=int(env.get("ARCA_MAX_UPLOAD_BYTES") or 5 * 1024**3),
        npm_max_publish_bytes=int(env.get("ARCA_NPM_MAX_PUBLISH_BYTES") or 256 * 1024**2),
        s3_presigned_downloads=(env.get("ARCA_S3_PRESIGNED_DOWNLOADS") or "0").lower() in ("1", "true", "yes"),
        external=external,
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
