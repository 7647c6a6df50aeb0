"""npm search (`GET -/v1/search?text=&size=&from=`): the registry's answer shape, ranked by how
well each package's name matches the words, then its keywords and description.

Pure: the route passes the packages the services found (and any remote's answer) in; this module
parses the query, scores, merges and renders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from app.domain.errors import ValidationError
from app.formats.npm.names import full_name

DEFAULT_SIZE, MAX_SIZE, MAX_FROM = 20, 250, 10_000
MAX_TEXT = 256


@dataclass(frozen=True)
class Query:
    words: tuple[str, ...]
    size: int
    offset: int


def parse_query(params) -> Query:
    """`text`, `size` and `from` of a search request (`quality`, `popularity`, `maintenance`, which
    npm sends too, are accepted and ignored: there are no popularity figures here)."""
    text = params.get("text") or ""
    if len(text) > MAX_TEXT:
        raise ValidationError(f"text is longer than {MAX_TEXT} characters")
    size = _int(params, "size", DEFAULT_SIZE, 1, MAX_SIZE)
    offset = _int(params, "from", 0, 0, MAX_FROM)
    words = tuple(w.lower() for w in text.split() if w)
    if not words:
        raise ValidationError("npm search needs some text to look for (text=...)")
    return Query(words, size, offset)


def _int(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}, not {raw[:20]!r}")
    return int(raw)


def _keywords(manifest: dict) -> list[str]:
    kw = manifest.get("keywords")
    if isinstance(kw, str):
        kw = kw.replace(",", " ").split()
    return [k for k in kw if isinstance(k, str)][:50] if isinstance(kw, list) else []


def score(words: tuple[str, ...], name: str, keywords: list[str], description: str) -> float:
    """0 when a word is nowhere; else the mean over the words of the best place each is found:
    the whole name (or the name without its scope) 1, its start .8, inside it .6, a keyword .4,
    the description .2."""
    bare = name.rsplit("/", 1)[-1].lower()
    lname, kws, desc = name.lower(), [k.lower() for k in keywords], description.lower()
    total = 0.0
    for w in words:
        if w in (lname, bare, lname.lstrip("@")):
            s = 1.0
        elif lname.startswith(w) or bare.startswith(w) or lname.lstrip("@").startswith(w):
            s = 0.8
        elif w in lname:
            s = 0.6
        elif w in kws:
            s = 0.4
        elif w in desc or any(w in k for k in kws):
            s = 0.2
        else:
            return 0.0
        total += s
    return round(total / len(words), 4)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_object(words: tuple[str, ...], scope: str, bare: str, version: str, summary: str | None,
                 published: datetime | None, attributes: dict) -> dict | None:
    """The search object of one package held here, or None when the words do not match it."""
    name = full_name(scope, bare)
    manifest = attributes.get("manifest") if isinstance(attributes.get("manifest"), dict) else {}
    description = summary or (manifest.get("description") if isinstance(manifest.get("description"), str) else "")
    keywords = _keywords(manifest)
    s = score(words, name, keywords, description or "")
    if not s:
        return None
    publisher = manifest.get("_npmUser") if isinstance(manifest.get("_npmUser"), dict) else None
    pkg = {"name": name, "scope": scope or "unscoped", "version": version, "description": description or "",
           "keywords": keywords, "date": _iso(published), "links": {}, "maintainers": [],
           "publisher": {"username": str(publisher.get("name"))} if publisher and publisher.get("name") else None}
    for key, field in (("homepage", "homepage"), ("repository", "repository")):
        value = manifest.get(field)
        url = value.get("url") if isinstance(value, dict) else value
        if isinstance(url, str):
            pkg["links"][key] = url
    if pkg["publisher"] is None:
        del pkg["publisher"]
    return _object(pkg, s)


def _object(pkg: dict, s: float) -> dict:
    return {"package": pkg, "score": {"final": s, "detail": {"quality": s, "popularity": 0, "maintenance": 0}},
            "searchScore": s, "flags": {}}


def remote_objects(body: bytes, words: tuple[str, ...], limit: int) -> tuple[list[dict], int]:
    """The usable objects of a remote registry's search answer, scored the same way (a remote's
    odd entries are left out; an answer that is not a search answer is no answer: ([], 0))."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return [], 0
    objects = doc.get("objects") if isinstance(doc, dict) else None
    if not isinstance(objects, list):
        return [], 0
    out = []
    for obj in objects[:limit]:
        pkg = obj.get("package") if isinstance(obj, dict) else None
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str) or len(pkg["name"]) > 214:
            continue
        description = pkg.get("description") if isinstance(pkg.get("description"), str) else ""
        keywords = _keywords(pkg)
        s = score(words, pkg["name"], keywords, description)
        if not s:
            continue
        clean = {"name": pkg["name"], "scope": pkg.get("scope") if isinstance(pkg.get("scope"), str) else "unscoped",
                 "version": pkg.get("version") if isinstance(pkg.get("version"), str) else "",
                 "description": description, "keywords": keywords,
                 "date": pkg.get("date") if isinstance(pkg.get("date"), str) else None,
                 "links": {k: v for k, v in (pkg.get("links") or {}).items()
                           if isinstance(k, str) and isinstance(v, str)} if isinstance(pkg.get("links"), dict) else {},
                 "maintainers": [{"username": m["username"]} for m in pkg.get("maintainers") or []
                                 if isinstance(m, dict) and isinstance(m.get("username"), str)][:20]
                 if isinstance(pkg.get("maintainers"), list) else []}
        if isinstance(pkg.get("publisher"), dict) and isinstance(pkg["publisher"].get("username"), str):
            clean["publisher"] = {"username": pkg["publisher"]["username"]}
        out.append(_object(clean, s))
    total = doc.get("total") if isinstance(doc.get("total"), int) and doc.get("total") >= 0 else len(out)
    return out, total


def render(local: list[dict], remote: list[dict], remote_total: int, q: Query, now: datetime) -> dict:
    """One answer: local packages shadow remote ones of the same name; ranked by score, then name."""
    seen = {o["package"]["name"] for o in local}
    merged = local + [o for o in remote if o["package"]["name"] not in seen]
    merged.sort(key=lambda o: (-o["searchScore"], o["package"]["name"]))
    dropped = len(remote) - (len(merged) - len(local))
    total = len(local) + max(remote_total - dropped, len(merged) - len(local))
    return {"objects": merged[q.offset:q.offset + q.size], "total": total,
            "time": now.astimezone(timezone.utc).strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")}
