"""AWS's query protocol (IAM, STS), read and written by the botocore service model.

`read_params` turns a form (`Action=CreateUser&UserName=alice&Tags.member.1.Key=team...`) into the
operation's input by the input shape, refusing members the operation does not have, and checks it
against the model (app/api/inputs.check). `render_result` writes the output shape as the XML that
botocore's QueryParser reads (`<CreateUserResponse><CreateUserResult>...`), `render_error` IAM's
`<ErrorResponse>`. Nothing here is hand-written per operation."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Mapping
from urllib.parse import quote
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from app.api.inputs import check
from app.domain.errors import ValidationError

# The query protocol's own fields, never operation input.
PROTOCOL_FIELDS = ("Action", "Version")
# IAM returns policy documents URL-encoded; botocore (and so boto3 and the AWS CLI) decodes them.
POLICY_DOCUMENT = "policyDocumentType"


# ---- reading ----------------------------------------------------------------------------------------

def read_params(op: OperationModel, form: Mapping[str, str]) -> dict:
    used: set[str] = set()
    params = _read(op.input_shape, form, "", used) if op.input_shape is not None else {}
    for name in form:
        if name not in used and name not in PROTOCOL_FIELDS:
            raise ValidationError(f"Unknown parameter {name[:60]!r} for {op.name}")
    if op.input_shape is not None:
        check(op.input_shape, params)
    return params


def _read(shape: Shape, form: Mapping[str, str], key: str, used: set[str]):
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for member, ms in shape.members.items():
            wire = ms.serialization.get("name", member)
            value = _read(ms, form, f"{key}.{wire}" if key else wire, used)
            if value is not None:
                out[member] = value
        return out if out or not key else None
    if kind == "list":
        item = shape.member.serialization.get("name", "member")
        base = key if shape.serialization.get("flattened") else f"{key}.{item}"
        items = []
        while (item := _read(shape.member, form, f"{base}.{len(items) + 1}", used)) is not None:
            items.append(item)
        if not items and key in form:  # botocore sends an empty list as `Name=`
            used.add(key)
            return []
        return items or None
    if kind == "map":
        out, i = {}, 1
        while f"{key}.entry.{i}.key" in form:
            k = _read(shape.key, form, f"{key}.entry.{i}.key", used)
            out[k] = _read(shape.value, form, f"{key}.entry.{i}.value", used)
            i += 1
        return out or None
    if key not in form:
        return None
    used.add(key)
    return _scalar(shape, form[key], key)


def _scalar(shape: Shape, text: str, key: str):
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise ValidationError(f"Invalid value for {key}: {text[:40]!r} is not an integer") from None
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValidationError(f"Invalid value for {key}: {text[:40]!r} is not true or false")
        return text.lower() == "true"
    if kind == "timestamp":
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"Invalid value for {key}: {text[:40]!r} is not an ISO 8601 time") from None
    if kind == "blob":
        return base64.b64decode(text)
    return text


# ---- writing ----------------------------------------------------------------------------------------

def render_result(op: OperationModel, result: dict, namespace: str, request_id: str) -> str:
    shape = op.output_shape
    body = ""
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{op.name}Result")
        body = f"<{wrapper}>{_members(shape, result)}</{wrapper}>"
    return (f'<{op.name}Response xmlns="{namespace}">{body}'
            f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
            f"</{op.name}Response>")


def render_error(code: str, message: str, namespace: str, request_id: str, sender: bool = True) -> str:
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{"Sender" if sender else "Receiver"}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>")


def _members(shape: Shape, value: dict) -> str:
    out = []
    for member, ms in shape.members.items():
        if value.get(member) is not None:
            out.append(_element(ms, value[member], ms.serialization.get("name", member)))
    return "".join(out)


def _element(shape: Shape, value, name: str) -> str:
    kind = shape.type_name
    if kind == "structure":
        return f"<{name}>{_members(shape, value)}</{name}>"
    if kind == "list":
        item = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            return "".join(_element(shape.member, v, name) for v in value)
        return f"<{name}>{''.join(_element(shape.member, v, item) for v in value)}</{name}>"
    if kind == "map":
        entries = "".join(f"<entry>{_element(shape.key, k, 'key')}{_element(shape.value, v, 'value')}</entry>"
                          for k, v in value.items())
        return f"<{name}>{entries}</{name}>"
    return f"<{name}>{escape(_text(shape, value))}</{name}>"


def _text(shape: Shape, value) -> str:
    kind = shape.type_name
    if kind == "timestamp":
        when = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), timezone.utc)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "blob":
        return base64.b64encode(value).decode()
    if shape.name == POLICY_DOCUMENT:
        return quote(str(value), safe="")
    return str(value)
