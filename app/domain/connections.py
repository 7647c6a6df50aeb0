"""External connections: the public ones CodeArtifact names (and the format each serves), and the
value a remote is fetched through (its base URL, the URL prefixes it may link to, credentials).

Pure: the settings give public connections their URLs, the database gives custom ones theirs;
both end up as a `Connection`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.domain.errors import ValidationError

# The formats Arca's data plane serves (a repository endpoint and upstream reads exist for these).
SERVED_FORMATS = ("maven", "npm", "pypi")

# Every external connection name CodeArtifact accepts, with the package format it serves.
PUBLIC = {
    "public:npmjs": "npm",
    "public:pypi": "pypi",
    "public:maven-central": "maven",
    "public:maven-googleandroid": "maven",
    "public:maven-gradleplugins": "maven",
    "public:maven-commonsware": "maven",
    "public:maven-clojars": "maven",
    "public:nuget-org": "nuget",
    "public:ruby-gems-org": "ruby",
    "public:crates-io": "cargo",
}

PYPI_FILES = "https://files.pythonhosted.org/"
PYPI_INDEX = "https://pypi.org/simple/"
# A custom connection's name: CodeArtifact's pattern, but never in the `public:` namespace.
CUSTOM_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-:]{1,99}")
AUTH_TYPES = ("NONE", "BASIC", "BEARER", "CODEARTIFACT_TOKEN")


def served(fmt: str) -> bool:
    return fmt in SERVED_FORMATS


def check_custom_name(name: object) -> str:
    if not isinstance(name, str) or not CUSTOM_NAME_RE.fullmatch(name):
        raise ValidationError(f"Invalid external connection name {name!r}: 2-100 characters of letters, digits, "
                              "'.', '_', '-' and ':', starting with a letter or digit")
    if name.lower().startswith("public:"):
        raise ValidationError(f"External connection names starting with 'public:' are CodeArtifact's own; "
                              f"choose another name than {name!r}")
    return name


@dataclass(frozen=True)
class Credentials:
    """How Arca authenticates to a remote. `secret` is the password (BASIC), the token (BEARER) or
    the secret access key (CODEARTIFACT_TOKEN); it is never part of a repr or a log line."""

    type: str
    username: str | None = None
    secret: str = field(default="", repr=False)
    access_key_id: str | None = None
    # CODEARTIFACT_TOKEN: where GetAuthorizationToken is called, for which domain
    endpoint_url: str | None = None
    domain: str | None = None
    domain_owner: str | None = None
    region: str | None = None
    duration_seconds: int | None = None

    def public_view(self) -> dict:
        """What the API may show: the type and who, never the secret."""
        out: dict = {"type": self.type}
        for key, value in (("username", self.username), ("accessKeyId", self.access_key_id),
                           ("endpointUrl", self.endpoint_url), ("domain", self.domain),
                           ("domainOwner", self.domain_owner), ("region", self.region),
                           ("durationSeconds", self.duration_seconds)):
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class Connection:
    """A remote as the upstream code fetches it: name, format, base URL (ending in '/'), extra URL
    prefixes its documents may link to, credentials (custom connections only)."""

    name: str
    format: str
    url: str
    allow: tuple[str, ...] = ()
    credentials: Credentials | None = field(default=None, compare=False)
    custom: bool = False

    def prefixes(self) -> list[str]:
        """The URLs that may be fetched through this connection. For a PyPI index URL ending in
        /simple/, the site beside it too (pypiserver serves files under /packages/); for pypi.org
        also files.pythonhosted.org."""
        out = [self.url]
        if self.format == "pypi" and self.url.endswith("/simple/"):
            out.append(self.url[: -len("simple/")])
        if self.url == PYPI_INDEX:
            out.append(PYPI_FILES)
        return out + list(self.allow)

    def sends_credentials_to(self, url: str) -> bool:
        """Credentials go only to the remote's own site (the URL and, for a PyPI index, the site
        beside it), never to an extra allowed prefix or a redirect target elsewhere, such as a
        presigned storage URL."""
        own = self.prefixes()[:2] if self.format == "pypi" and self.url.endswith("/simple/") else [self.url]
        return any(url.startswith(p) for p in own)


def with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
