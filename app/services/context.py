"""The process-wide collaborators every service call needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.auth.tokens import TokenSigner
from app.config import Settings, load_secret_key
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
    user_id: int
    name: str
    is_admin: bool
    arn: str


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

    def __post_init__(self) -> None:
        if self.remotes is None:
            self.remotes = Remotes(self.settings, shared=FleetState(self.db))

    @property
    def region(self) -> str:
        return self.settings.region or "us-east-1"

    @property
    def account(self) -> str:
        return self.settings.account_id

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> "Arca":
        hooks.install(settings.account_id, settings.region or "us-east-1")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate:
            upgrade(settings.database_url)
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            blobs=open_blob_store(settings),
            signer=TokenSigner(load_secret_key(settings)),
            pages=PageTokens(load_secret_key(settings)),
        )
