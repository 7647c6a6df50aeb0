"""SQLAlchemy 2 models. Schema changes only through alembic revisions in migrations/versions."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s__%(column_0_N_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "ck": "ck_%(table_name)s__%(constraint_name)s",
    "fk": "fk_%(table_name)s__%(column_0_N_name)s__%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)



class TZDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: TZDateTime, dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Authorization tokens issued before this instant are dead (`arca admin revoke-tokens`).
    tokens_valid_after: Mapped[datetime | None] = mapped_column()


class AccessKey(Base):
    __tablename__ = "access_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    access_key_id: Mapped[str] = mapped_column(String(32), unique=True)
    # SigV4 verification needs the secret itself (HMAC), as AWS does: so it is encrypted (sealed
    # under a key derived from the server key, app/auth/secretbox.py), not hashed.
    secret_sealed: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="Active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    last_used_service: Mapped[str | None] = mapped_column(String(32))
    last_used_region: Mapped[str | None] = mapped_column(String(32))
    user: Mapped[User] = relationship()


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    path: Mapped[str] = mapped_column(String(512), default="/")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Role(Base):
    """An identity that is assumed, not signed in as: `trust_policy` says who may assume it
    (sts:AssumeRoleWithWebIdentity from an OIDC provider), its inline policies what it may do."""

    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(512), default="/")
    description: Mapped[str | None] = mapped_column(String(1000))
    trust_policy: Mapped[str] = mapped_column(Text)
    max_session_duration: Mapped[int] = mapped_column(Integer, default=3600)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Sessions and tokens issued before this instant are dead (`arca admin revoke-tokens --role`).
    tokens_valid_after: Mapped[datetime | None] = mapped_column()


class IdentityPolicy(Base):
    """An inline identity policy of exactly one user, group or role."""

    __tablename__ = "identity_policies"
    __table_args__ = (UniqueConstraint("user_id", "name"), UniqueConstraint("group_id", "name"),
                      UniqueConstraint("role_id", "name"))
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)


class OidcProvider(Base):
    __tablename__ = "oidc_providers"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(255), unique=True)
    client_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    thumbprints: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoleSession(Base):
    """Temporary credentials from AssumeRoleWithWebIdentity: an access key id, its sealed secret and
    the SHA-256 of the session token (the token itself is not kept)."""

    __tablename__ = "role_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    access_key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sealed: Mapped[str] = mapped_column(String(255))
    token_sha256: Mapped[str] = mapped_column(String(64))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    session_name: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class IdentityEpoch(Base):
    """One row whose revision every revocation bumps (a user deleted, a key deactivated or
    deleted, tokens revoked, a role deleted): each process polls it and drops its cached keys
    and principals when it moves, so a revocation reaches every node within seconds without a
    database read per request."""

    __tablename__ = "identity_epoch"
    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class Domain(Base):
    __tablename__ = "domains"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    encryption_key: Mapped[str | None] = mapped_column(String(1011))
    # Arca's own domain settings (UpdateDomainSettings): {"dependencyConfusionProtection": bool}
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(1000))
    external_connection: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    domain: Mapped[Domain] = relationship()


class RepositoryUpstream(Base):
    __tablename__ = "repository_upstreams"
    __table_args__ = (UniqueConstraint("repository_id", "upstream_id"),)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    upstream_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="RESTRICT"), index=True)


class Package(Base):
    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("repository_id", "format", "namespace", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(16))
    # '' when the format has no namespace, so the unique constraint holds on every backend.
    namespace: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    origin_publish: Mapped[str | None] = mapped_column(String(8))
    origin_upstream: Mapped[str | None] = mapped_column(String(8))
    # Bumped on every change to the package's versions, assets or tags: validates caches (ETag).
    revision: Mapped[int] = mapped_column(BigInteger, default=1)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PackageVersion(Base):
    __tablename__ = "package_versions"
    __table_args__ = (UniqueConstraint("package_id", "version"), Index(None, "package_id", "status"))
    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    revision: Mapped[str] = mapped_column(String(50))
    origin_type: Mapped[str] = mapped_column(String(16), default="INTERNAL")
    domain_entry_point: Mapped[str | None] = mapped_column(String(100))
    published_time: Mapped[datetime | None] = mapped_column()
    # When a file of the version was last served (recorded in batches, to the hour: app/services/usage.py).
    last_downloaded_at: Mapped[datetime | None] = mapped_column()
    summary: Mapped[str | None] = mapped_column(Text)
    # Format-specific facts (npm manifest, pypi requires_python, maven packaging, readme, dependencies).
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    package: Mapped[Package] = relationship()


class Blob(Base):
    __tablename__ = "blobs"
    __table_args__ = (UniqueConstraint("domain_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sha1: Mapped[str] = mapped_column(String(40))
    md5: Mapped[str] = mapped_column(String(32))
    sha512: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("package_version_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    package_version_id: Mapped[int] = mapped_column(ForeignKey("package_versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    blob_id: Mapped[int] = mapped_column(ForeignKey("blobs.id", ondelete="RESTRICT"), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    blob: Mapped[Blob] = relationship(lazy="joined")


class HeldUpload(Base):
    """What arrives before its file in a parallel deploy (Maven 3.9/4's parallel PUTs): a checksum
    (`kind` sha1/md5/sha256/sha512, `value` its hex digest) of `file_name`, or a publish mark
    (`kind` "publish", `file_name` '') from a maven-metadata.xml that named a version before any of
    its files had come. Checked and deleted when the file (or the version) comes; ignored once older
    than `Settings.maven_hold_seconds`. In the database, so every node sees it."""

    __tablename__ = "held_uploads"
    __table_args__ = (UniqueConstraint("repository_id", "format", "namespace", "package", "version", "file_name",
                                       "kind", name="uq_held_uploads__slot"), Index(None, "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(255))
    package: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    file_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DistTag(Base):
    __tablename__ = "dist_tags"
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(255))


class Policy(Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("resource_arn"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    repository_id: Mapped[int | None] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    resource_arn: Mapped[str] = mapped_column(String(300))
    document: Mapped[str] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(String(100))


class Tag(Base):
    __tablename__ = "resource_tags"
    resource_arn: Mapped[str] = mapped_column(String(300), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class PackageGroup(Base):
    __tablename__ = "package_groups"
    __table_args__ = (UniqueConstraint("domain_id", "pattern"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    pattern: Mapped[str] = mapped_column(String(520))
    description: Mapped[str | None] = mapped_column(String(1000))
    contact_info: Mapped[str | None] = mapped_column(String(1000))
    # {"PUBLISH": "ALLOW|BLOCK|ALLOW_SPECIFIC_REPOSITORIES|INHERIT", "EXTERNAL_UPSTREAM": ..., "INTERNAL_UPSTREAM": ...}
    restrictions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"PUBLISH": [repository names], ...} for ALLOW_SPECIFIC_REPOSITORIES
    allowed_repositories: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who changed what, written in the same transaction as the change."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "at"), Index(None, "domain", "at"), Index(None, "principal", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    principal: Mapped[str | None] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(50))
    resource: Mapped[str] = mapped_column(String(1000))
    domain: Mapped[str | None] = mapped_column(String(50))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SigninThrottle(Base):
    """Failed console sign-ins, counted per user name (scope "user") and per client address (scope
    "address") in the database, so the limits hold across worker processes and nodes. Attempts in
    flight are counted as failures until they succeed; a row that reaches its limit is locked until
    `locked_until`. Rows past `expires_at` mean nothing and are deleted."""

    __tablename__ = "signin_throttle"
    __table_args__ = (UniqueConstraint("scope", "key"), Index(None, "expires_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(80))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # the HMAC key of X-Arca-Signature-256, sealed like access key secrets (app/auth/secretbox.py)
    secret: Mapped[str | None] = mapped_column(String(512))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEvent(Base):
    """A package event, written in the same transaction as the change it describes."""

    __tablename__ = "outbox_events"
    __table_args__ = (UniqueConstraint("dedup_id"), Index(None, "domain_id", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    package_id: Mapped[int | None] = mapped_column(BigInteger)
    sequence_number: Mapped[int] = mapped_column(BigInteger)
    dedup_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """One event for one webhook. `pending` until a 2xx (`delivered`) or until retries run out
    (`failed`: the dead-letter list, which `arca admin redeliver` puts back in the queue)."""

    __tablename__ = "deliveries"
    __table_args__ = (Index(None, "status", "next_attempt_at"), Index(None, "webhook_id", "status", "event_id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # every attempt ever made
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    # A redelivery starts a new round of retries: its attempts and age count from here.
    requeued_at: Mapped[datetime | None] = mapped_column()
    attempts_before_requeue: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_at: Mapped[datetime | None] = mapped_column()
    event: Mapped[OutboxEvent] = relationship()


class RemoteBreaker(Base):
    """A remote's consecutive failures, shared by every node: once they reach the threshold, no
    node asks it before `open_until` (ms since the epoch)."""

    __tablename__ = "remote_breakers"
    connection: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    open_until: Mapped[int] = mapped_column(BigInteger, default=0)


class RemoteLease(Base):
    """One node of the cluster fetches a remote file (or document) at a time: the holder of the
    lease, until `expires_at` (ms since the epoch), renewed while it fetches."""

    __tablename__ = "remote_leases"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger)


class ExternalConnection(Base):
    """A custom external connection (CreateExternalConnection): a remote of one format at `url`,
    with credentials. `auth` holds what may be shown (type, user name, key id, token endpoint);
    `secret` the password, token or secret access key, sealed (app/auth/secretbox.py), bound to the
    connection's name."""

    __tablename__ = "external_connections"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    format: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2000))
    allowed_prefixes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"prefixes": [...]}
    auth: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
class CleanupPolicy(Base):
    """Cleanup rules of a domain (repository_id NULL: inherited by its repositories) or of one
    repository (replacing the domain's). The document is checked when stored (app/services/cleanup_rules.py)."""

    __tablename__ = "cleanup_policies"
    __table_args__ = (UniqueConstraint("resource_arn"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    repository_id: Mapped[int | None] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    resource_arn: Mapped[str] = mapped_column(String(300))
    document: Mapped[str] = mapped_column(Text)
    revision: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobLease(Base):
    """A background job that one process of the whole installation runs at a time (the cleanup
    schedule): whoever moves `lease_until` forward with a conditional UPDATE holds it."""

    __tablename__ = "job_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column()
    last_started_at: Mapped[datetime | None] = mapped_column()
    last_finished_at: Mapped[datetime | None] = mapped_column()
    last_report: Mapped[dict[str, Any]] = mapped_column(default=dict)
