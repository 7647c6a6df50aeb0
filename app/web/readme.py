"""READMEs and long descriptions as the public registries show them: Markdown (CommonMark with
GitHub's tables and strikethrough, fenced code) through markdown-it-py, reStructuredText through
readme_renderer (what PyPI uses), plain text as preformatted text; the result always through an
allow-list sanitizer (nh3): no script, no event handler, no `javascript:` URL, links get
`rel="nofollow noopener"`, images only from https.

Which renderer: PyPI's `description_content_type` (`text/markdown`, `text/x-rst`, `text/plain`;
missing means reStructuredText, as on PyPI), npm READMEs are Markdown, anything else plain."""

from __future__ import annotations

from functools import lru_cache

import nh3
import readme_renderer.rst
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

MAX_README = 512 * 1024  # characters rendered; the rest is cut (a README is not a book)

TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"} | {"input"}
ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "a": {"href", "hreflang", "title"},
    "img": {"src", "alt", "title", "width", "height", "align"},
    "input": {"type", "checked", "disabled"},  # GitHub task lists
    "code": {"class"},  # language-python: harmless, no console style uses it
    "th": {"align", "colspan", "rowspan"},
    "td": {"align", "colspan", "rowspan"}, "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"])


def _keep(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src" and not value.strip().lower().startswith("https://"):
        return None  # no images over plain http, data: or relative URLs (nothing served here to show)
    if tag == "input" and attr == "type" and value != "checkbox":
        return None
    return value


def sanitize(html: str) -> str:
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_keep, url_schemes=URL_SCHEMES,
                     link_rel="nofollow noopener", strip_comments=True)


def kind_of(fmt: str, content_type: str | None) -> str:
    """'markdown', 'rst' or 'plain' for a README of format `fmt` declared as `content_type`."""
    if fmt == "npm":
        return "markdown"
    if fmt != "pypi":
        return "plain"
    media = (content_type or "text/x-rst").split(";", 1)[0].strip().lower()
    return {"text/markdown": "markdown", "text/x-rst": "rst"}.get(media, "plain")


@lru_cache(maxsize=64)
def render(text: str, kind: str) -> Markup:
    """The README as safe HTML (a Markup the templates print as is); empty when there is none."""
    if not text.strip():
        return Markup("")
    cut = len(text) > MAX_README
    text = text[:MAX_README]
    html = None
    if kind == "markdown":
        html = _markdown.render(text)
    elif kind == "rst":
        html = readme_renderer.rst.render(text)  # None when docutils cannot parse it: shown as text
    if html is None:
        html = f"<pre>{escape(text)}</pre>"
    if cut:
        html += f"<p><em>(cut after {MAX_README} characters)</em></p>"
    return Markup(sanitize(html))
