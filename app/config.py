"""Configuration: the one reader of the process environment.

Server settings (`Settings`, from ARCA_* variables, read once per process) and the client side of
the `arca` CLI (`ClientSettings`: endpoint and region, as the AWS CLI finds them). No other module
reads `os.environ`.

Where a server setting comes from (`Environment`): the process environment, over the optional
TOML file that ARCA_CONFIG names (the same names); any NAME may instead be given as NAME_FILE, the
path of a file holding the value (the container convention for secrets). A value Arca cannot use
is a `SettingError` whose one line names the setting and where it came from."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

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


# ---- where settings come from ---------------------------------------------------------------------

CONFIG_VARIABLE = "ARCA_CONFIG"
FILE_SUFFIX = "_FILE"
_NAME_RE = re.compile(r"ARCA_[A-Z0-9_]+")
_SECRET_RE = re.compile(r"SECRET|TOKEN|PASSWORD|_KEY$|_KEY_")
_URL_PASSWORD_RE = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*:)([^@]*)@", re.IGNORECASE)
MASK = "********"


def is_secret(name: str) -> bool:
    """Settings whose value is never printed (`arca config show` masks it)."""
    return bool(_SECRET_RE.search(name))


def masked(name: str, value: str | None) -> str | None:
    """A value fit to print: secrets masked whole, passwords in URLs masked."""
    if value is None:
        return None
    if is_secret(name):
        return MASK
    return _URL_PASSWORD_RE.sub(lambda m: m.group(1) + MASK + "@", value)


@dataclass
class _Read:
    value: str | None
    source: str  # "environment" | "file PATH" | "NAME_FILE=PATH (environment|file PATH)" | "default"
    default: Any = None


class Environment(Mapping[str, str]):
    """The settings as Arca sees them: the process environment over the ARCA_CONFIG file, NAME_FILE
    read for NAME. It remembers every name read, with its default, for `arca config show` and to
    refuse names in the file that no setting has."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.config_path = environ.get(CONFIG_VARIABLE) or None
        self.file: dict[str, str] = _load_config_file(self.config_path) if self.config_path else {}
        self.reads: dict[str, _Read] = {}

    # the layers: the environment wins over the file; NAME and NAME_FILE in one layer are refused
    def _layer(self, values: Mapping[str, str], name: str, where: str) -> tuple[str | None, str] | None:
        direct = values.get(name)
        path = values.get(name + FILE_SUFFIX)
        if direct not in (None, "") and path not in (None, ""):
            raise SettingError(f"{name} and {name}{FILE_SUFFIX} are both set{_in(where)}: set one of them")
        if path not in (None, ""):
            return _read_value_file(name, path, where), f"{name}{FILE_SUFFIX}={path} ({where})"
        if direct not in (None, ""):
            return direct, where
        return None

    def lookup(self, name: str) -> tuple[str | None, str]:
        for values, where in ((self.environ, "environment"), (self.file, f"file {self.config_path}")):
            found = self._layer(values, name, where)
            if found is not None:
                return found
        return None, "default"

    def read(self, name: str, default: Any = None) -> str | None:
        value, source = self.lookup(name)
        self.reads[name] = _Read(value, source, default)
        return value

    def where(self, name: str) -> str:
        """' (in file arca.toml)' and the like: where the value of `name` came from, for messages."""
        source = self.reads[name].source if name in self.reads else self.lookup(name)[1]
        return "" if source in ("environment", "default") else f" (from {source})"

    def unknown_file_names(self) -> list[str]:
        names = {n[: -len(FILE_SUFFIX)] if n.endswith(FILE_SUFFIX) else n for n in self.file}
        return sorted(n for n in names if n not in self.reads)

    # Mapping, for code that reads settings as a dict
    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        value = self.read(name)
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self.read(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self.environ, *self.file}))

    def __len__(self) -> int:
        return len({*self.environ, *self.file})


def _in(where: str) -> str:
    return "" if where == "environment" else f" (in {where})"


def _load_config_file(path: str) -> dict[str, str]:
    """The TOML file ARCA_CONFIG names: `ARCA_NAME = value` lines, values as the environment would
    hold them (numbers and booleans become text, a list of scalars a comma-separated list)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SettingError(f"{CONFIG_VARIABLE}: cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingError(f"{CONFIG_VARIABLE}: {path} is not valid TOML: {exc}") from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if not _NAME_RE.fullmatch(key):
            raise SettingError(f"{CONFIG_VARIABLE}: {key} in {path} is not a setting name (ARCA_...)")
        if isinstance(value, list) and all(_is_scalar(v) for v in value):
            out[key] = ",".join(_scalar_text(v) for v in value)
        elif _is_scalar(value):
            out[key] = _scalar_text(value)
        else:
            raise SettingError(f"{key} in {path} must be a string, number, boolean or list of them")
    return out


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _read_value_file(name: str, path: str, where: str) -> str:
    try:
        value = Path(path).read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingError(f"{name}{FILE_SUFFIX}{_in(where)}: cannot read {path}: {reason}") from None
    if not value:
        raise SettingError(f"{name}{FILE_SUFFIX}{_in(where)}: {path} is empty")
    return value


def environment(env: Mapping[str, str] | None = None) -> Environment:
    if isinstance(env, Environment):
        return env
    return Environment(os.environ if env is None else env)


# ---- reading one setting ---------------------------------------------------------------------------

def _raw(env: Mapping[str, str], name: str, default: Any = None) -> str | None:
    if isinstance(env, Environment):
        return env.read(name, default)
    return env.get(name) or None


def _fail(env: Mapping[str, str], name: str, problem: str) -> SettingError:
    where = env.where(name) if isinstance(env, Environment) else ""
    return SettingError(f"{name} {problem}{where}")


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    raw = _raw(env, name, default)
    return default if raw in (None, "") else raw


def _number(env: Mapping[str, str], name: str, default: float, kind=int):
    raw = _raw(env, name, default)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise _fail(env, name, f"must be a {'whole ' if kind is int else ''}number, not {raw!r}") from None


def _at_least(env: Mapping[str, str], name: str, default: float, minimum: float, kind=int):
    value = _number(env, name, default, kind)
    if value < minimum:
        raise _fail(env, name, f"must be at least {minimum}, not {value}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _raw(env, name, default)
    if raw in (None, ""):
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise _fail(env, name, f"must be 1 or 0 (true/false, yes/no, on/off), not {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (_text(env, name, default) or default).lower()
    if value not in choices:
        raise _fail(env, name, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def blob_store_problem(spec: str) -> str | None:
    """Why `spec` names no blob store ('file', or s3://bucket[/prefix]); None when it does."""
    if spec == "file":
        return None
    if spec.startswith("s3://") and re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", spec[5:].split("/", 1)[0]):
        return None
    return f"must be 'file' or 's3://bucket/prefix', not {spec!r}"


def _blob_store(env: Mapping[str, str]) -> str:
    spec = _text(env, "ARCA_BLOB_STORE", "file")
    problem = blob_store_problem(spec)
    if problem:
        raise _fail(env, "ARCA_BLOB_STORE", problem)
    return spec


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    url = _text(env, "ARCA_DATABASE_URL", f"sqlite:///{data_dir / 'arca.db'}")
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme.split("+")[0].lower() not in ("sqlite", "postgresql"):
        raise _fail(env, "ARCA_DATABASE_URL", "must be a sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB "
                                              f"URL, not {masked('ARCA_DATABASE_URL', url)!r}")
    return url


def _base_url(env: Mapping[str, str]) -> str | None:
    url = (_text(env, "ARCA_BASE_URL") or "").rstrip("/")
    if url and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", url):
        raise _fail(env, "ARCA_BASE_URL", f"must be an http:// or https:// URL, not {url!r}")
    return url or None


def _addresses(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    try:
        return parse_addresses(_text(env, name) or "")
    except ValueError as exc:
        raise _fail(env, name, str(exc)) from None


def parse_addresses(text: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses and networks (10.0.0.0/8), or '*' for any."""
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"must list IP addresses or networks (10.0.0.0/8) or '*', not {item!r}") from None
    return items


def _uri_prefix(env: Mapping[str, str], name: str) -> str | None:
    raw = (_text(env, name) or "").strip()
    if not raw:
        return None
    if not raw.startswith("/") or any(c in raw for c in "?#\r\n\t ") or "/../" in raw + "/":
        raise _fail(env, name, f"must be a URI path such as /internal/, not {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


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
    # a URI prefix such as /internal/: downloads from the disk store are answered with
    # X-Accel-Redirect: {prefix}{path below the blob root}, for an nginx in front to send the file
    accel_redirect: str | None = None
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
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
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
    # earlier server keys, still able to open secrets sealed under them (ARCA_SECRET_KEY_PREVIOUS)
    previous_secret_keys_env: tuple[str, ...] = ()
    # how often each process looks for revocations made by other nodes (seconds)
    identity_poll_seconds: float = 1.0
    # an unknown `kid` refetches an OIDC issuer's keys at most this often (seconds)
    oidc_jwks_min_refresh: float = 10.0
    # an issuer's keys are refetched after this long even when every kid is known (seconds)
    oidc_jwks_max_age: float = 3600.0
    # lifecycle: how often the cleanup rules run (seconds; 0 = only `arca admin cleanup`), how often each
    # process writes the download times it collected (seconds)
    cleanup_interval: float = 86400.0
    download_flush_seconds: float = 60.0
    # Maven: how long a checksum (or a publishing maven-metadata.xml) that came before its file waits
    # for that file
    maven_hold_seconds: float = 3600.0
    # behind a reverse proxy: trust X-Forwarded-For/-Proto from these addresses ('*': any); proxy
    # headers alone: from the loopback addresses
    proxy_headers: bool = False
    forwarded_allow_ips: tuple[str, ...] = ()
    # webhooks: retries back off exponentially (base seconds, doubling, up to the cap, with jitter)
    # and stop after max attempts or once the delivery is older than max age (then: dead letter)
    webhook_backoff: float = 2.0
    webhook_backoff_max: float = 300.0
    webhook_max_attempts: int = 12
    webhook_max_age: float = 86400.0
    webhook_timeout: float = 10.0
    webhook_poll_interval: float = 0.5

    @property
    def trusted_proxies(self) -> tuple[str, ...]:
        """The addresses whose X-Forwarded-* headers are believed; () when none are."""
        if self.forwarded_allow_ips:
            return self.forwarded_allow_ips
        return ("127.0.0.1", "::1") if self.proxy_headers else ()

    @property
    def secret_key(self) -> str:
        return load_secret_key(self)


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """The server's settings from the environment (and the ARCA_CONFIG file, and NAME_FILE files)."""
    env = environment(env)
    data_dir = Path(_text(env, "ARCA_DATA_DIR", str(Path("storage").resolve()))).resolve()
    external = dict(EXTERNAL_DEFAULTS)
    for name in list(external):
        external[name] = _text(env, external_env_name(name), external[name])
    allow = {}
    for name in external:
        raw = _text(env, external_env_name(name) + "_ALLOW") or ""
        allow[name] = tuple(p if p.endswith("/") else p + "/" for p in (x.strip() for x in raw.split(",")) if p)
    account_id = _text(env, "ARCA_ACCOUNT_ID", "000000000000")
    if not re.fullmatch(r"\d{12}", account_id):
        raise _fail(env, "ARCA_ACCOUNT_ID", f"must be 12 digits, not {account_id!r}")
    settings = Settings(
        data_dir=data_dir,
        database_url=_database_url(env, data_dir),
        blob_store=_blob_store(env),
        account_id=account_id,
        region=_text(env, "ARCA_REGION"),
        base_url=_base_url(env),
        secret_key_env=_text(env, "ARCA_SECRET_KEY"),
        s3_endpoint_url=_text(env, "ARCA_S3_ENDPOINT_URL"),
        max_upload_bytes=_at_least(env, "ARCA_MAX_UPLOAD_BYTES", 5 * 1024**3, 1),
        npm_max_publish_bytes=_at_least(env, "ARCA_NPM_MAX_PUBLISH_BYTES", 256 * 1024**2, 1),
        npm_max_unpacked_bytes=_at_least(env, "ARCA_NPM_MAX_UNPACKED_BYTES", 512 * 1024**2, 1),
        maven_hold_seconds=_at_least(env, "ARCA_MAVEN_HOLD_SECONDS", 3600.0, 0, float),
        s3_presigned_downloads=_flag(env, "ARCA_S3_PRESIGNED_DOWNLOADS", False),
        accel_redirect=_uri_prefix(env, "ARCA_ACCEL_REDIRECT"),
        external=external,
        external_allow=allow,
        upstream_timeout=_at_least(env, "ARCA_UPSTREAM_TIMEOUT", 5.0, 0, float),
        upstream_max_age=_at_least(env, "ARCA_UPSTREAM_MAX_AGE", 300.0, 0, float),
        upstream_breaker_failures=int(_at_least(env, "ARCA_UPSTREAM_BREAKER_FAILURES", 3, 0, float)),
        upstream_breaker_seconds=_at_least(env, "ARCA_UPSTREAM_BREAKER_SECONDS", 30.0, 0, float),
        upstream_token_refresh=_at_least(env, "ARCA_UPSTREAM_TOKEN_REFRESH_SECONDS", 600.0, 0, float),
        host=_text(env, "ARCA_HOST", "127.0.0.1"),
        port=_at_least(env, "ARCA_PORT", 8080, 0),
        workers=_at_least(env, "ARCA_WORKERS", os.cpu_count() or 1, 1),
        log_level=_choice(env, "ARCA_LOG_LEVEL", "info", LOG_LEVELS),
        log_format=_choice(env, "ARCA_LOG_FORMAT", "text", ("text", "json")),
        metrics_token=_text(env, "ARCA_METRICS_TOKEN"),
        webhooks=_flag(env, "ARCA_WEBHOOKS", True),
        request_header_timeout=_at_least(env, "ARCA_REQUEST_HEADER_TIMEOUT", 30.0, 0, float),
        request_body_timeout=_at_least(env, "ARCA_REQUEST_BODY_TIMEOUT", 30.0, 0, float),
        signin_max_failures=_at_least(env, "ARCA_SIGNIN_MAX_FAILURES", 5, 0),
        signin_max_failures_per_address=_at_least(env, "ARCA_SIGNIN_MAX_FAILURES_PER_ADDRESS", 20, 0),
        signin_window=_at_least(env, "ARCA_SIGNIN_WINDOW", 900.0, 1, float),
        signin_lockout=_at_least(env, "ARCA_SIGNIN_LOCKOUT", 900.0, 1, float),
        console_max_form_bytes=_at_least(env, "ARCA_CONSOLE_MAX_FORM_BYTES", 16 * 1024, 1024),
        proxy_headers=_flag(env, "ARCA_PROXY_HEADERS", False),
        forwarded_allow_ips=_addresses(env, "ARCA_FORWARDED_ALLOW_IPS"),
        webhook_backoff=_at_least(env, "ARCA_WEBHOOK_BACKOFF", 2.0, 0, float),
        webhook_backoff_max=_at_least(env, "ARCA_WEBHOOK_BACKOFF_MAX", 300.0, 0, float),
        webhook_max_attempts=_at_least(env, "ARCA_WEBHOOK_MAX_ATTEMPTS", 12, 1),
        webhook_max_age=_at_least(env, "ARCA_WEBHOOK_MAX_AGE", 86400.0, 0, float),
        webhook_timeout=_at_least(env, "ARCA_WEBHOOK_TIMEOUT", 10.0, 0.001, float),
        webhook_poll_interval=_at_least(env, "ARCA_WEBHOOK_POLL_INTERVAL", 0.5, 0.01, float),
        previous_secret_keys_env=tuple((_text(env, "ARCA_SECRET_KEY_PREVIOUS") or "").replace(",", " ").split()),
        identity_poll_seconds=_at_least(env, "ARCA_IDENTITY_POLL_SECONDS", 1.0, 0.05, float),
        oidc_jwks_min_refresh=_at_least(env, "ARCA_OIDC_JWKS_MIN_REFRESH", 10.0, 0, float),
        oidc_jwks_max_age=_at_least(env, "ARCA_OIDC_JWKS_MAX_AGE", 3600.0, 1, float),
        cleanup_interval=_at_least(env, "ARCA_CLEANUP_INTERVAL", 86400.0, 0, float),
        download_flush_seconds=_at_least(env, "ARCA_DOWNLOAD_FLUSH_SECONDS", 60.0, 0.1, float),
    )
    unknown = env.unknown_file_names()
    if unknown:
        raise SettingError(f"{CONFIG_VARIABLE}: {', '.join(unknown)} in {env.config_path} "
                           f"{'is not a setting' if len(unknown) == 1 else 'are not settings'}")
    return settings


def effective_settings(env: Environment) -> list[dict]:
    """What `arca config show` prints: every setting read (after `settings_from_env(env)`), its value
    as the environment would spell it (secrets masked) and where it came from."""
    rows = []
    for name, read in env.reads.items():
        if read.value is not None:
            value = masked(name, read.value)
        elif read.default is None:
            value = None
        else:
            value = _scalar_text(read.default) if _is_scalar(read.default) else str(read.default)
        rows.append({"name": name, "value": value, "source": read.source})
    return rows


def ensure_data_dir(settings: Settings) -> Path:
    """The data dir, made if missing; a SettingError naming ARCA_DATA_DIR when it cannot be."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingError(f"ARCA_DATA_DIR: cannot create {settings.data_dir}: {exc.strerror or exc}") from None
    return settings.data_dir


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


def _previous_file(settings: Settings) -> Path:
    return settings.data_dir / "secret.key.previous"


def load_secret_keys(settings: Settings) -> list[str]:
    """The current server key first, then the earlier ones that may still open sealed secrets:
    ARCA_SECRET_KEY_PREVIOUS, and (with the key file) $ARCA_DATA_DIR/secret.key.previous, which
    `arca admin rotate-secret-key` keeps, newest first."""
    keys = [load_secret_key(settings), *settings.previous_secret_keys_env]
    try:
        keys += [line.strip() for line in _previous_file(settings).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        pass
    return list(dict.fromkeys(keys))


def reload_secret_keys(settings: Settings) -> list[str]:
    """`load_secret_keys` read again from disk (after `arca admin rotate-secret-key`)."""
    _secret_from_file.cache_clear()
    return load_secret_keys(settings)


def _write_private(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def rotate_key_file(settings: Settings) -> None:
    """Replace the data dir's key file with a new key, keeping the old one first in
    secret.key.previous. The previous file is written first: whenever this stops, both keys are on
    disk and every sealed secret still opens."""
    if settings.secret_key_env:
        raise SettingError("the server key comes from ARCA_SECRET_KEY: set the new key there and the old one "
                           "in ARCA_SECRET_KEY_PREVIOUS (docs/identity.md)")
    old = load_secret_key(settings)
    earlier = [k for k in load_secret_keys(settings)[1:] if k != old]
    _write_private(_previous_file(settings), "\n".join([old, *earlier]) + "\n")
    _write_private(settings.data_dir / "secret.key", secrets.token_urlsafe(48))
    _secret_from_file.cache_clear()


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
                    env: Mapping[str, str] | None = None, profile: str | None = None) -> ClientSettings:
    """The endpoint in the AWS CLI's order: `--endpoint-url`, AWS_ENDPOINT_URL_CODEARTIFACT,
    AWS_ENDPOINT_URL, the profile's `services` section, the profile's `endpoint_url` (all unless
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), then ARCA_ENDPOINT_URL, then the local default."""
    env = os.environ if env is None else env
    return ClientSettings(
        endpoint_url=(endpoint_url or configured_endpoint_url(env, profile) or env.get("ARCA_ENDPOINT_URL")
                      or DEFAULT_ENDPOINT),
        region=region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        environ=env,
    )


def configured_endpoint_url(env: Mapping[str, str], profile: str | None = None) -> str | None:
    """What botocore itself finds for CodeArtifact (its ConfiguredEndpointProvider, the lookup every
    AWS SDK and the AWS CLI share), or None. Arca's own operations go to the same server."""
    import botocore.exceptions
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider

    session = botocore.session.Session(profile=profile)
    try:
        if _is_true(env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) or session.get_config_variable(
                "ignore_configured_endpoint_urls"):
            return None
        scoped = session.get_scoped_config()
    except botocore.exceptions.ProfileNotFound:
        return None  # the client names the missing profile when it is made
    return ConfiguredEndpointProvider(full_config=session.full_config, scoped_config=scoped,
                                      client_name="codeartifact", environ=env).provide()


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"
