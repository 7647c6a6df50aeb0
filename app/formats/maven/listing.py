"""Directory listings of the Maven layout, as Maven Central and Nexus show them: an HTML page of
links, directories ending in '/'. Pure: the entries come from the routes."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urlsplit

from app.domain.errors import ValidationError
from app.formats.maven.paths import METADATA, SNAPSHOT, parse_filename


def render_listing(path: str, entries: list[str]) -> bytes:
    """The page for directory `path` (shown as its title) listing `entries` (sorted, dirs first)."""
    esc = html.escape
    items = sorted(set(entries), key=lambda e: (not e.endswith("/"), e))
    links = "".join(f'<a href="{quote(e)}">{esc(e)}</a>\n' for e in items)
    return (f"<!DOCTYPE html>\n<html>\n<head><title>{esc(path)}</title></head>\n<body>\n<h1>{esc(path)}</h1>\n"
            f'<pre><a href="../">../</a>\n{links}</pre>\n</body>\n</html>\n').encode()


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def version_files(page: str, artifact: str, version: str) -> list[str]:
    """The artifact files a remote's listing of a version directory links to: names of files of
    that version only (no directories, no checksum sidecars)."""
    p = _Anchors()
    p.feed(page)
    out = []
    for href in p.hrefs:
        path = urlsplit(href).path
        if not path or path.endswith("/"):
            continue  # a directory (or the parent)
        # Only the name counts (Nexus links absolutely): it is fetched under the connection's URL.
        name = unquote(path.rsplit("/", 1)[-1])
        if name == METADATA and version.endswith(SNAPSHOT):
            out.append(name)
            continue
        try:
            parse_filename(artifact, version, name)
        except ValidationError:
            continue
        if name.rsplit(".", 1)[-1] in ("sha1", "md5", "sha256", "sha512"):
            continue
        out.append(name)
    return sorted(set(out))
