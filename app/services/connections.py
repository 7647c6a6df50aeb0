"""External connections: which remote a connection name stands for (the public ones from the
settings, `ARCA_EXTERNAL_<NAME>` and `..._ALLOW`; custom ones from the database), and the
administration of custom connections (private remotes: another Arca, a CodeArtifact domain, a
Nexus, an Artifactory), whose credentials are sealed at rest and never shown."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.sealing import Unsealable, derive_key, seal, unseal
from app.config import Settings, load_secret_key
from app.db.models import Domain, ExternalConnection, Repository, utcnow
from app.domain.connections import AUTH_TYPES, PUBLIC, SERVED_FORMATS, Connection, Credentials, check_custom_name, \
    served, with_slash
from app.domain.errors import AccessDenied, Conflict, NotFound, ValidationError
from app.services.caches import MISS
from app.services.context import Arca, Principal

PURPOSE = "external-connection-credentials"
SECRET_FIELDS = {"BASIC": "password", "BEARER": "token", "CODEARTIFACT_TOKEN": "secretAccessKey"}
MIN_DURATION, MAX_DURATION = 900, 43200


# ---- lookups ------------------------------------------------------------------------------------

def public_connection(settings: Settings, name: str) -> Connection | None:
    """A `public:*` connection with the URL the settings give it (None: unknown or no URL)."""
    fmt = PUBLIC.get(name)
    url = settings.external.get(name)
    if fmt is None or not url:
        return None
    return Connection(name, fmt, with_slash(url), tuple(settings.external_allow.get(name, ())))


def lookup(arca: Arca, s: Session, name: str | None) -> Connection | None:
    """The connection `name` names, public or custom; None when there is none. Custom ones are
    cached for a few seconds per process (a change reaches every node within that time)."""
    if not name:
        return None
    if name in PUBLIC:
        return public_connection(arca.settings, name)
    hit = arca.caches.connections.get(name)
    if hit is not MISS:
        return hit
    row = s.scalar(select(ExternalConnection).where(ExternalConnection.name == name))
    return arca.caches.connections.put(name, None if row is None else _connection(arca, row))


def format_of(s: Session, name: str) -> str | None:
    """The package format a connection serves (None: unknown)."""
    if name in PUBLIC:
        return PUBLIC[name]
    return s.scalar(select(ExternalConnection.format).where(ExternalConnection.name == name))


def check_served(fmt: str) -> str:
    """ValidationError for a format CodeArtifact knows but Arca's data plane does not serve."""
    if not served(fmt):
        raise ValidationError(f"Arca does not serve {fmt} packages: repository endpoints exist for "
                              f"{', '.join(SERVED_FORMATS)}")
    return fmt


def check_associable(s: Session, name: object) -> str:
    """The external connection `name`, if a repository may use it: a known connection of a format
    Arca serves. ValidationException otherwise, saying which."""
    fmt = format_of(s, name) if isinstance(name, str) else None
    if fmt is None:
        usable = sorted(n for n, f in PUBLIC.items() if served(f))
        raise ValidationError(f"Unknown external connection {name!r}: one of {', '.join(usable)}, or a custom "
                              "connection (arca create-external-connection)")
    if not served(fmt):
        raise ValidationError(f"External connection {name} serves {fmt} packages, which Arca does not serve "
                              f"(it serves {', '.join(SERVED_FORMATS)})")
    return name


def _key(arca: Arca) -> bytes:
    return derive_key(load_secret_key(arca.settings), PURPOSE)


def _connection(arca: Arca, row: ExternalConnection) -> Connection:
    auth = dict(row.auth or {})
    kind = auth.get("type", "NONE")
    creds = None
    if kind != "NONE":
        try:
            secret = unseal(_key(arca), row.secret or "", row.name) if row.secret else ""
        except Unsealable:
            # Sealed under another server key: the remote cannot be asked (what was retained from
            # it still is served); app/upstream/credentials.py says why.
            return Connection(row.name, row.format, row.url, (), Credentials("UNREADABLE"), custom=True)
        creds = Credentials(kind, auth.get("username"), secret, auth.get("accessKeyId"), auth.get("endpointUrl"),
                            auth.get("domain"), auth.get("domainOwner"), auth.get("region"),
                            auth.get("durationSeconds"))
    return Connection(row.name, row.format, row.url, tuple((row.allowed_prefixes or {}).get("prefixes") or ()),
                      creds, custom=True)


# ---- administration -----------------------------------------------------------------------------

def _admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise AccessDenied(f"User {principal.arn} is not authorized to perform arca:{action}: external connections "
                           "are administered by administrators")


def _check_url(url: object, what: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{what} must be an http or https URL, not {url!r}")
    if parts.username or parts.password or "@" in parts.netloc:
        raise ValidationError(f"{what} must not carry credentials; give them in authentication")
    if parts.query or parts.fragment:
        raise ValidationError(f"{what} must not have a query or a fragment")
    return with_slash(url)


def _check_auth(auth: object) -> tuple[dict, str | None]:
    """(what may be shown, the secret) of an authentication input."""
    auth = auth or {"type": "NONE"}
    if not isinstance(auth, dict):
        raise ValidationError("authentication must be an object with a type")
    kind = auth.get("type") or "NONE"
    if kind not in AUTH_TYPES:
        raise ValidationError(f"authentication.type must be one of {', '.join(AUTH_TYPES)}, not {kind!r}")
    allowed = {"NONE": (), "BASIC": ("username", "password"), "BEARER": ("token",),
               "CODEARTIFACT_TOKEN": ("accessKeyId", "secretAccessKey", "endpointUrl", "domain", "domainOwner",
                                      "region", "durationSeconds")}[kind]
    extra = sorted(k for k, v in auth.items() if k != "type" and v is not None and k not in allowed)
    if extra:
        raise ValidationError(f"authentication of type {kind} takes no {', '.join(extra)}")
    required = {"BASIC": ("username", "password"), "BEARER": ("token",),
                "CODEARTIFACT_TOKEN": ("accessKeyId", "secretAccessKey", "endpointUrl", "domain")}.get(kind, ())
    missing = [k for k in required if not auth.get(k)]
    if missing:
        raise ValidationError(f"authentication of type {kind} needs {', '.join(missing)}")
    shown = {"type": kind, **{k: auth[k] for k in allowed if k != SECRET_FIELDS.get(kind) and auth.get(k) is not None}}
    if kind == "CODEARTIFACT_TOKEN":
        shown["endpointUrl"] = _check_url(auth["endpointUrl"], "authentication.endpointUrl").rstrip("/")
        duration = auth.get("durationSeconds")
        if duration is not None and not (isinstance(duration, int) and MIN_DURATION <= duration <= MAX_DURATION):
            raise ValidationError(f"authentication.durationSeconds must be {MIN_DURATION} to {MAX_DURATION}")
    return shown, auth.get(SECRET_FIELDS[kind]) if kind in SECRET_FIELDS else None


def _check_prefixes(prefixes: object) -> list[str]:
    if prefixes is None:
        return []
    if not isinstance(prefixes, list) or len(prefixes) > 10:
        raise ValidationError("allowedUrlPrefixes must be a list of at most 10 URLs")
    return [_check_url(p, "each allowedUrlPrefixes entry") for p in prefixes]


def _users(s: Session, name: str) -> list[str]:
    return [f"{d}/{r}" for d, r in s.execute(
        select(Domain.name, Repository.name).join(Domain, Domain.id == Repository.domain_id)
        .where(Repository.external_connection == name).order_by(Domain.name, Repository.name))]


def _shape(s: Session, row: ExternalConnection) -> dict:
    return {"name": row.name, "format": row.format, "url": row.url,
            "allowedUrlPrefixes": list((row.allowed_prefixes or {}).get("prefixes") or []),
            "authentication": dict(row.auth or {"type": "NONE"}), "repositories": _users(s, row.name),
            "createdTime": row.created_at, "updatedTime": row.updated_at}


def _row(s: Session, name: str) -> ExternalConnection:
    row = s.scalar(select(ExternalConnection).where(ExternalConnection.name == name))
    if row is None:
        raise NotFound(f"External connection {name} does not exist", resource_id=name,
                       resource_type="external-connection")
    return row


def create_connection(arca: Arca, principal: Principal, name: str, fmt: str, url: str, authentication: dict | None,
                      allowed_prefixes: list | None = None) -> dict:
    _admin(principal, "CreateExternalConnection")
    check_custom_name(name)
    check_served(fmt)
    url = _check_url(url, "url")
    if fmt == "pypi" and not url.endswith("/simple/"):
        raise ValidationError("A PyPI connection's url is the remote's simple index: it ends with /simple/")
    shown, secret = _check_auth(authentication)
    prefixes = _check_prefixes(allowed_prefixes)
    try:
        with arca.db.session() as s:
            if s.scalar(select(func.count()).select_from(ExternalConnection).where(ExternalConnection.name == name)):
                raise Conflict(f"External connection {name} already exists", resource_id=name,
                               resource_type="external-connection")
            row = ExternalConnection(name=name, format=fmt, url=url, allowed_prefixes={"prefixes": prefixes},
                                     auth=shown, secret=seal(_key(arca), secret, name) if secret else None)
            s.add(row)
            s.flush()
            out = _shape(s, row)
    except IntegrityError:
        raise Conflict(f"External connection {name} already exists", resource_id=name,
                       resource_type="external-connection") from None
    arca.caches.connections.discard(name)
    return out


def describe_connection(arca: Arca, principal: Principal, name: str) -> dict:
    _admin(principal, "DescribeExternalConnection")
    with arca.db.read() as s:
        return _shape(s, _row(s, name))


def list_connections(arca: Arca, principal: Principal) -> dict:
    _admin(principal, "ListExternalConnections")
    with arca.db.read() as s:
        rows = s.scalars(select(ExternalConnection).order_by(ExternalConnection.name))
        return {"externalConnections": [_shape(s, r) for r in rows]}


def update_connection(arca: Arca, principal: Principal, name: str, url: str | None = None,
                      authentication: dict | None = None, allowed_prefixes: list | None = None) -> dict:
    """Changes what is given: the URL, the credentials (replaced as a whole), the prefixes."""
    _admin(principal, "UpdateExternalConnection")
    with arca.db.session() as s:
        row = _row(s, name)
        if url is not None:
            url = _check_url(url, "url")
            if row.format == "pypi" and not url.endswith("/simple/"):
                raise ValidationError("A PyPI connection's url is the remote's simple index: it ends with /simple/")
            row.url = url
        if authentication is not None:
            shown, secret = _check_auth(authentication)
            row.auth, row.secret = shown, seal(_key(arca), secret, name) if secret else None
        if allowed_prefixes is not None:
            row.allowed_prefixes = {"prefixes": _check_prefixes(allowed_prefixes)}
        row.updated_at = utcnow()
        s.flush()
        out = _shape(s, row)
    arca.caches.connections.discard(name)
    return out


def delete_connection(arca: Arca, principal: Principal, name: str) -> dict:
    _admin(principal, "DeleteExternalConnection")
    with arca.db.session() as s:
        row = _row(s, name)
        users = _users(s, name)
        if users:
            raise Conflict(f"External connection {name} is used by {', '.join(users)}; disassociate it there first",
                           resource_id=name, resource_type="external-connection")
        out = _shape(s, row)
        s.delete(row)
    arca.caches.connections.discard(name)
    return out
