"""An operation's input, read off the request by CodeArtifact's service model and checked against it
before any handler runs.

Each input member comes from where the model puts it (`location`/`locationName`: the query string,
a header, or the JSON body by name); query and header text becomes the member's type. The result is
then checked against the input shape: botocore's ParamValidator does required members, types and
minimums; this module adds, once and from the shape, what it leaves out: maximum lengths, sizes and
values, patterns, enums, booleans posing as integers, and text that storage cannot hold (NUL, lone
surrogates). Any problem is one ValidationException naming the member by its path (`tags[0].key`)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Mapping

import botocore.session
import regex
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

from app.domain.errors import ValidationError

MODEL = botocore.session.get_session().get_service_model("codeartifact")
# Query parameters that SigV4 itself may put in a URL (a presigned request); never operation input.
SIGV4_QUERY = re.compile(r"(?i)x-amz-.*")
_CONTROL = regex.compile(r"\p{C}")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL text holds no NUL; UTF-8 no lone surrogate
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")
MISSING, UNKNOWN = "Missing required member", "Unknown member"
_BOOLEAN_TEXT = {"true": True, "false": False}
_JSON_TYPES = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list",
               dict: "an object", type(None): "null", bytes: "bytes"}


def operation(name: str) -> OperationModel:
    return MODEL.operation_model(name)


@lru_cache(maxsize=None)
def _pattern(text: str) -> regex.Pattern:
    # The model's patterns are Java regular expressions (\p{C}, \p{IsWhitespace}); `regex` reads
    # them, and like the service we require the whole value to match.
    return regex.compile(text)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


# ---- reading: the wire → the operation's members --------------------------------------------------------

def _label(member: str, shape: Shape) -> str:
    """How messages name a top-level member: by the model's name, plus where it travels when that differs."""
    where, wire = shape.serialization.get("location"), shape.serialization.get("name", member)
    if where == "querystring" and wire != member:
        return f"{member} (query parameter {wire})"
    if where == "header":
        return f"{member} (header {wire})"
    return member


def _from_text(member: str, shape: Shape, text: str):
    """Query and header values arrive as text; the member's type decides what they mean."""
    if shape.type_name in ("integer", "long"):
        if not _INTEGER_TEXT.fullmatch(text):
            raise ValidationError(f"Invalid value for {_label(member, shape)}: {_shown(text)} is not an integer")
        return int(text)
    if shape.type_name == "boolean":
        if text.lower() not in _BOOLEAN_TEXT:
            raise ValidationError(f"Invalid value for {_label(member, shape)}: {_shown(text)} is not true or false")
        return _BOOLEAN_TEXT[text.lower()]
    return text


def _drop_nulls(value):
    """JSON null for a member means the member is absent (a client never needs to send null)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def read_input(op: OperationModel, query: Iterable[tuple[str, str]], headers: Mapping[str, str],
               body: dict) -> dict:
    """The operation's input by member name, read from the request and checked against the model.
    `headers` are keyed in lower case; the streamed payload member (PublishPackageVersion's asset)
    is not read here."""
    shape = op.input_shape
    payload = shape.serialization.get("payload")
    query = list(query)
    params, body_names = {}, set()
    for member, ms in shape.members.items():
        where, wire = ms.serialization.get("location"), ms.serialization.get("name", member)
        if member == payload:
            continue
        if where == "querystring":
            values = [v for k, v in query if k == wire]
            if len(values) > 1:
                raise ValidationError(f"Invalid value for {_label(member, ms)}: given {len(values)} times, "
                                      "expected one value")
            if values:
                params[member] = _from_text(member, ms, values[0])
        elif where == "header":
            if wire.lower() in headers:
                params[member] = _from_text(member, ms, headers[wire.lower()])
        elif where is None:
            body_names.add(wire)
            if body.get(wire) is not None:
                params[member] = _drop_nulls(body[wire])
        else:  # the codeartifact model puts no member in the URI path
            raise NotImplementedError(f"{op.name}.{member}: input in {where}")
    _refuse_unknown(op, query, body, body_names)
    check(shape, {**params, **({payload: b""} if payload else {})}, labels={
        m: _label(m, ms) for m, ms in shape.members.items()})
    return params


def _refuse_unknown(op: OperationModel, query: list[tuple[str, str]], body: dict, body_names: set[str]) -> None:
    """A parameter the operation does not have is a mistake to report, not a thing to ignore."""
    known = {ms.serialization.get("name", m) for m, ms in op.input_shape.members.items()
             if ms.serialization.get("location") == "querystring"}
    for name, _value in query:
        if name not in known and not SIGV4_QUERY.fullmatch(name):
            raise ValidationError(_one_line(f"Unknown query parameter {_shown(name)} for {op.name}"))
    for name in body:
        if name not in body_names:
            raise ValidationError(_one_line(f"Unknown member {_shown(name)} in the body of {op.name}"))


# ---- checking: one walk over the shape ------------------------------------------------------------------

def check(shape: Shape, params: dict, labels: Mapping[str, str] | None = None) -> None:
    """Raise one ValidationException listing every way `params` does not fit `shape`."""
    report = ParamValidator().validate(params, shape)
    problems = [_botocore_problem(reason, name.lstrip("."), details) for reason, name, details in report._errors]
    # What botocore leaves out, on values whose type it found right.
    _constraints(shape, params, "", problems)
    if problems:
        first: dict[str, str] = {}
        for path, text in problems:  # one problem per member is enough to fix it
            first.setdefault(path, text)
        named = [_with_label(path, text, labels or {}) for path, text in first.items()]
        head = "" if len(named) == 1 else f"{len(named)} validation errors: "
        raise ValidationError(_one_line(head + "; ".join(named)))


def _one_line(message: str) -> str:
    """Control characters a member name or map key brought in, escaped: the message stays one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), message)


def _with_label(path: str, text: str, labels: Mapping[str, str]) -> str:
    top = re.match(r"[^.\[]+", path)
    if top and top.group(0) in labels:
        path = labels[top.group(0)] + path[top.end():]
    if len(path) > 120:  # a long map key (botocore names map values by their key)
        path = path[:117] + "..."
    if text in (MISSING, UNKNOWN):
        return f"{text} {path}"
    return f"Invalid value for {path}: {text}"


def _botocore_problem(reason: str, name: str, details: dict) -> tuple[str, str]:
    """botocore's report entry as (member path, what is wrong with it)."""
    if reason == "missing required field":
        path = f"{name}.{details['required_name']}" if name else details["required_name"]
        return path, MISSING
    if reason == "unknown field":
        path = f"{name}.{details['unknown_param']}" if name else details["unknown_param"]
        return path, UNKNOWN
    if reason == "invalid type":
        param = details["param"]
        return name, f"expected {_expected(details['valid_types'])}, got {_kind(param)}"
    if reason in ("invalid range", "invalid length"):
        what = "value" if reason == "invalid range" else "length"
        got = details["param"]  # for a length, botocore reports the length
        return name, f"{what} {got} is less than the minimum {details['min_allowed']}"
    return name, reason


def _expected(valid_types: list[str]) -> str:
    text = " ".join(valid_types)
    for token, words in (("'str'", "a string"), ("'bool'", "a boolean"), ("'int'", "an integer"),
                         ("'list'", "a list"), ("'dict'", "an object"), ("'bytes'", "bytes")):
        if token in text:
            return words
    return text


def _constraints(shape: Shape, value, path: str, problems: list) -> None:
    meta, kind = shape.metadata, shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _constraints(member, value[name], f"{path}.{name}" if path else name, problems)
    elif kind == "list" and isinstance(value, list):
        _size(meta, len(value), "entries", path, problems)
        for i, item in enumerate(value):
            _constraints(shape.member, item, f"{path}[{i}]", problems)
    elif kind == "map" and isinstance(value, dict):
        _size(meta, len(value), "entries", path, problems)
        for key, item in value.items():
            # named as botocore names them
            _constraints(shape.key, key, f"{path} (key: {key})", problems)
            _constraints(shape.value, item, f"{path}.{key}", problems)
    elif kind == "string" and isinstance(value, str):
        _string(shape, value, path, problems)
    elif kind in ("integer", "long"):
        if isinstance(value, bool):
            problems.append((path, "expected an integer, got a boolean"))
        elif isinstance(value, int) and "max" in meta and value > meta["max"]:
            problems.append((path, f"value {value} is more than the maximum {meta['max']}"))


def _size(meta: dict, size: int, unit: str, path: str, problems: list) -> None:
    if "max" in meta and size > meta["max"]:
        problems.append((path, f"{size} {unit} are more than the maximum {meta['max']}"))


def _string(shape: Shape, value: str, path: str, problems: list) -> None:
    meta = shape.metadata
    if _UNSTORABLE.search(value):
        problems.append((path, "it holds a NUL or an unpaired surrogate character"))
        return
    if "max" in meta and len(value) > meta["max"]:
        problems.append((path, f"length {len(value)} is more than the maximum {meta['max']}"))
    elif shape.enum and value not in shape.enum:
        problems.append((path, f"{_shown(value)} is not one of {', '.join(shape.enum)}"))
    elif "pattern" in meta and not _pattern(meta["pattern"]).fullmatch(value):
        problems.append((path, f"{_shown(value)} does not match the pattern {meta['pattern']}"))
