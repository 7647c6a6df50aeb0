"""Links of an HTML page (PEP 503 simple pages, directory listings): (href, text, attributes)."""

from __future__ import annotations

from html.parser import HTMLParser


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, dict]] = []
        self._open: dict | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = {k: v or "" for k, v in attrs}
            self._text = []

    def handle_data(self, data):
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._open is not None:
            if self._open.get("href"):
                self.links.append((self._open["href"], "".join(self._text).strip(), self._open))
            self._open = None


def links(html: str) -> list[tuple[str, str, dict]]:
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.links
