"""READMEs and long descriptions as the public registries show them: Markdown (CommonMark with
GitHub's tables and strikethrough, fenced code) through markdown-it-py, reStructuredText through
readme_renderer (what PyPI uses), plain text as preformatted text; the result always through an
allow-list sanitizer (nh3): no script, no event handler, no `javascript:` URL, links get
`rel="nofollow noopener"`, images only from https.

Which renderer: PyPI's `description_content_type` (`text/markdown`, `text/x-rst`, `text/plain`;
missing means reStructuredText, as on PyPI), npm READMEs are Markdown, anything else plain.

The renderers are imported when the first README is rendered: docutils, Pygments, markdown-it and
nh3 cost each worker about 5 MiB that only the console's package pages use."""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

from markupsafe import Markup, escape

MAX_README = 512 * 1024  # characters rendered; the rest is cut (a README is not a book)
URL_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _renderers() -> SimpleNamespace:
    import nh3
    import readme_renderer.rst
    from markdown_it import MarkdownIt

    return SimpleNamespace(
        nh3=nh3, rst=readme_renderer.rst,
        markdown=MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
            ["table", "strikethrough"]),
        tags=set(nh3.ALLOWED_TAGS) - {"area", "map"} | {"input"},
        attributes={
            **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
            "a": {"href", "hreflang", "title"},
            "img": {"src", "alt", "title", "width", "height", "align"},
            "input": {"type", "checked", "disabled"},  # GitHub task lists
            "code": {"class"},  # language-python: harmless, no console style uses it
            "th": {"align", "colspan", "rowspan"},
            "td": {"align", "colspan", "rowspan"}, "ol": {"start"},
        })


def _keep(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src" and not value.strip().lower().startswith("https://"):
        return None  # no images over plain http, data: or relative URLs (nothing served here to show)
    if tag == "input" and attr == "type" and value != "checkbox":
        return None
    return value


def sanitize(html: str) -> str:
    r = _renderers()
    return r.nh3.clean(html, tags=r.tags, attributes=r.attributes, attribute_filter=_keep, url_schemes=URL_SCHEMES,
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
        html = _renderers().markdown.render(text)
    elif kind == "rst":
        html = _renderers().rst.render(text)  # None when docutils cannot parse it: shown as text
    if html is None:
        html = f"<pre>{escape(text)}</pre>"
    if cut:
        html += f"<p><em>(cut after {MAX_README} characters)</em></p>"
    return Markup(sanitize(html))
