"""The process-wide collaborators every service call needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.auth.secretbox import SecretBox, SecretUnreadable
from app.auth.tokens import TokenSigner
from app.config import Settings, ensure_data_dir, load_secret_key, load_secret_keys, reload_secret_keys
from app.db.session import Database, upgrade
from app.domain.coords import Coordinates
from app.observability import hooks
from app.services.caches import Caches
from app.services.fleet import FleetState
from app.services.paging import PageTokens
from app.services.usage import DownloadLog
from app.storage import BlobStore, open_blob_store
from app.upstream.remote import Remotes


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, or a role session (`role_id` set, `user_id` None)."""

    user_id: int | None
    name: str
    is_admin: bool
    arn: str
    valid_after: float = 0.0  # epoch seconds: authorization tokens issued before this are dead
    key_id: str | None = None  # the access key (or session key) the request was signed with
    role_id: int | None = None
    role_arn: str | None = None
    expires_at: float | None = None  # a role session's end


@dataclass(frozen=True)
class RepoRef:
    """A detached, cacheable view of a domain + repository (what the data plane addresses)."""

    domain_id: int
    domain: str
    repository_id: int
    repository: str
    external_connection: str | None


@dataclass(frozen=True)
class PackageAt:
    """A package as the control plane names it: domain, repository, coordinates."""

    domain: str
    repository: str
    coords: Coordinates
    owner: str | None = None


@dataclass
class Arca:
    settings: Settings
    db: Database
    blobs: BlobStore
    signer: TokenSigner
    pages: PageTokens
    caches: Caches = field(default_factory=Caches)
    downloads: DownloadLog = field(default_factory=DownloadLog)
    remotes: Remotes | None = None
    box: SecretBox | None = None

    def __post_init__(self) -> None:
        if self.remotes is None:
            self.remotes = Remotes(self.settings, shared=FleetState(self.db))
        if self.box is None:
            self.box = SecretBox(load_secret_keys(self.settings))

    def open_secret(self, sealed: str, context: str) -> str:
        """A sealed secret (app/auth/secretbox.py), or SecretUnreadable. A value sealed under a key
        this process has not read yet (`arca admin rotate-secret-key` ran since it started) makes it
        read the keys again."""
        try:
            return self.box.open(sealed, context)
        except SecretUnreadable:
            if self.box.has_key_of(sealed):
                raise
        self.reload_secret_keys()
        return self.box.open(sealed, context)

    def reload_secret_keys(self) -> None:
        """Read the server keys again (after the key file was rotated)."""
        self.box = SecretBox(reload_secret_keys(self.settings))

    @property
    def region(self) -> str:
        return self.settings.region or "us-east-1"

    @property
    def account(self) -> str:
        return self.settings.account_id

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> "Arca":
        hooks.install(settings.account_id, settings.region or "us-east-1")
        ensure_data_dir(settings)
        if migrate:
            upgrade(settings.database_url, load_secret_keys(settings))
        return cls(
            settings=settings,
            db=Database(settings.database_url, settings.data_dir),
            blobs=open_blob_store(settings),
            signer=TokenSigner(load_secret_key(settings)),
            pages=PageTokens(load_secret_key(settings)),
        )
