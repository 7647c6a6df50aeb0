"""AWS-CLI-style control-plane subcommands for the ``arca`` CLI.

Every CodeArtifact operation in botocore's service model is exposed as
``arca <kebab-op-name> --arg ...`` with the same argument names, value syntax
(scalars, shorthand, JSON, ``file://``), output formats (``--output json|text``,
``--query``) and error wording as ``aws codeartifact <op> ...``.

Public interface (used by the top-level ``arca`` entry point):

* :func:`run_operation` -- parse ``argv`` and run one operation, return exit code.
* :func:`operation_names` -- kebab-case names of every operation.
* :func:`make_client` -- client factory (tests monkeypatch it).
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import difflib
import html
import json
import os
import re
import sys
from functools import lru_cache
from typing import Any, TextIO

import botocore.session
from botocore import xform_name

from app import arca_model
from app.config import DEFAULT_ENDPOINT, DEFAULT_REGION, client_settings

SERVICE = "codeartifact"

# Exit codes, following AWS CLI v2.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARAM = 252
EXIT_CONFIG = 253
EXIT_SERVICE = 254
EXIT_OTHER = 255

# Global options accepted before or after the operation name.
_GLOBAL_VALUE_OPTS = ("--endpoint-url", "--region", "--query", "--output", "--profile")
_GLOBAL_FLAG_OPTS = ("--no-paginate", "--no-verify-ssl", "--no-cli-pager")

_PAGINATION_MEMBERS = ("nextToken", "maxResults")


# --------------------------------------------------------------------------
# Service model helpers
# --------------------------------------------------------------------------

@lru_cache(maxsize=2)
def _service_model(service: str = SERVICE):
    if service == arca_model.SERVICE:
        return arca_model.service_model()
    return botocore.session.get_session().get_service_model(service)


@lru_cache(maxsize=1)
def _op_map() -> dict[str, tuple[str, str]]:
    """kebab-case CLI name -> (service, operation name): CodeArtifact's operations (e.g.
    'create-domain' -> CreateDomain) and Arca's own (app/arca_model, e.g. 'update-domain-settings')."""
    out = {xform_name(op, "-"): (arca_model.SERVICE, op) for op in _service_model(arca_model.SERVICE).operation_names}
    out.update({xform_name(op, "-"): (SERVICE, op) for op in _service_model().operation_names})
    return out


def operation_names() -> list[str]:
    """Kebab-case names of all CodeArtifact operations, sorted."""
    return sorted(name for name, (service, _op) in _op_map().items() if service == SERVICE)


def arca_operation_names() -> list[str]:
    """Kebab-case names of Arca's own operations, sorted."""
    return sorted(name for name, (service, _op) in _op_map().items() if service != SERVICE)


def make_client(endpoint_url: str | None, region: str | None, profile: str | None = None,
                verify: bool = True, service: str = SERVICE):
    """Create the boto3 client of `service` (standard AWS credential chain)."""
    import boto3
    from botocore.config import Config

    if service == arca_model.SERVICE:
        session = boto3.Session(profile_name=profile, botocore_session=arca_model.session())
    else:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
    config = Config(retries={"mode": "standard", "total_max_attempts": 2},
                    connect_timeout=10, read_timeout=300)
    return session.client(service, endpoint_url=endpoint_url, region_name=region,
                          config=config, verify=verify)


# --------------------------------------------------------------------------
# Value parsing: file://, JSON, shorthand
# --------------------------------------------------------------------------

class ArgValueError(ValueError):
    """Bad value for a CLI argument (reported argparse-style, exit 2)."""


def _expand_file(value: str) -> str | bytes:
    """Resolve file:// (text) and fileb:// (bytes) references like the AWS CLI."""
    for prefix, mode in (("fileb://", "rb"), ("file://", "r")):
        if value.startswith(prefix):
            path = os.path.expanduser(value[len(prefix):])
            try:
                if mode == "rb":
                    with open(path, "rb") as fh:
                        return fh.read()
                with open(path, "r", encoding="utf-8") as fh:
                    return fh.read()
            except OSError as exc:
                raise ArgValueError(f"Unable to load paramfile {value}: {exc}") from None
    return value


class _ShorthandParser:
    """Parser for the AWS CLI shorthand syntax.

    ``key=value,key2=value2``, nested ``key={a=b}``, lists ``key=[a,b]``,
    quoted values ``key='a,b'`` and continuation lists ``key=a,b,key2=c``.
    Produces dicts/lists/strings; type coercion happens later against the shape.
    """

    _KEY_AHEAD = re.compile(r"\s*[^\s,=\[\]{}'\"]+(?:\s[^\s,=\[\]{}'\"]+)*\s*=")

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def parse(self) -> dict:
        result = self._parse_pairs(closer=None)
        if self.pos != len(self.text):
            self._fail("unexpected character")
        return result

    # -- helpers --
    def _fail(self, msg: str):
        raise ArgValueError(
            f"Error parsing parameter: {msg} at position {self.pos}: {self.text!r}")

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip_ws(self):
        while self._peek() and self._peek().isspace():
            self.pos += 1

    def _parse_pairs(self, closer: str | None) -> dict:
        out: dict[str, Any] = {}
        if closer and self._peek() == closer:
            return out
        while True:
            key = self._parse_key()
            value = self._parse_value(stops="," + (closer or ""))
            # Continuation values: key=a,b,c (no '=' in b, c) makes a list.
            while self._peek() == "," and not self._key_ahead(self.pos + 1):
                self.pos += 1
                if closer and self._peek() == closer:
                    break
                nxt = self._parse_value(stops="," + (closer or ""))
                value = (value if isinstance(value, list) else [value]) + [nxt]
            if key in out:
                self._fail(f"duplicate key {key!r}")
            out[key] = value
            if self._peek() == ",":
                self.pos += 1
                continue
            if self._peek() == (closer or ""):
                return out
            self._fail("expected ','")

    def _key_ahead(self, pos: int) -> bool:
        return bool(self._KEY_AHEAD.match(self.text, pos))

    def _parse_key(self) -> str:
        self._skip_ws()
        start = self.pos
        while self._peek() and self._peek() not in "=,[]{}":
            self.pos += 1
        key = self.text[start:self.pos].strip()
        if not key or self._peek() != "=":
            self._fail("expected key=value")
        self.pos += 1
        return key

    def _parse_value(self, stops: str):
        self._skip_ws()
        ch = self._peek()
        if ch == "[":
            return self._parse_list()
        if ch == "{":
            self.pos += 1
            self._skip_ws()
            val = self._parse_pairs(closer="}")
            self.pos += 1
            self._skip_ws()
            return val
        if ch in ("'", '"'):
            return self._parse_quoted()
        start = self.pos
        while self._peek() and self._peek() not in stops:
            self.pos += 1
        return self.text[start:self.pos].strip()

    def _parse_list(self) -> list:
        self.pos += 1  # '['
        items: list[Any] = []
        self._skip_ws()
        if self._peek() == "]":
            self.pos += 1
            return items
        while True:
            self._skip_ws()
            if self._peek() == "{":
                self.pos += 1
                items.append(self._parse_pairs(closer="}"))
                self.pos += 1
            else:
                items.append(self._parse_value(stops=",]"))
            self._skip_ws()
            if self._peek() == ",":
                self.pos += 1
                continue
            if self._peek() == "]":
                self.pos += 1
                self._skip_ws()
                return items
            self._fail("expected ',' or ']'")

    def _parse_quoted(self) -> str:
        quote = self._peek()
        self.pos += 1
        buf = []
        while True:
            ch = self._peek()
            if not ch:
                self._fail("unterminated quoted string")
            if ch == "\\" and self.pos + 1 < len(self.text):
                buf.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if ch == quote:
                break
            buf.append(ch)
        self._skip_ws()
        return "".join(buf)


def parse_shorthand(text: str) -> dict:
    """Parse AWS-CLI shorthand (``a=b,c=[d,e],f={g=h}``) into a dict of strings."""
    return _ShorthandParser(text).parse()


def _looks_like_json(text: str) -> bool:
    s = text.lstrip()
    return s.startswith("{") or s.startswith("[") or s.startswith('"')


def _load_json(text: str, arg: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ArgValueError(f"Invalid JSON for {arg}: {exc}") from None


def _coerce(value: Any, shape, arg: str) -> Any:
    """Convert parsed (string-typed) shorthand values to the types the shape wants."""
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            raise ArgValueError(f"Expected a structure (key=value,...) for {arg}, got {value!r}")
        members = shape.members
        lower = {k.lower(): k for k in members}
        out = {}
        for k, v in value.items():
            name = k if k in members else lower.get(k.lower())
            if name is None:
                raise ArgValueError(
                    f"Unknown key {k!r} for {arg}, valid keys: {', '.join(members)}")
            out[name] = _coerce(v, members[name], f"{arg}.{name}")
        return out
    if t == "map":
        if not isinstance(value, dict):
            raise ArgValueError(f"Expected a map (key=value,...) for {arg}, got {value!r}")
        return {str(k): _coerce(v, shape.value, f"{arg}.{k}") for k, v in value.items()}
    if t == "list":
        if not isinstance(value, list):
            value = [value]
        return [_coerce(v, shape.member, arg) for v in value]
    return _coerce_scalar(value, shape, arg)


def _coerce_scalar(value: Any, shape, arg: str) -> Any:
    t = shape.type_name
    if t in ("integer", "long"):
        if isinstance(value, bool):
            raise ArgValueError(f"Expected an integer for {arg}, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ArgValueError(f"Expected an integer for {arg}, got {value!r}") from None
    if t in ("float", "double"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ArgValueError(f"Expected a number for {arg}, got {value!r}") from None
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ArgValueError(f"Expected true or false for {arg}, got {value!r}")
    if t == "blob":
        return value.encode("utf-8") if isinstance(value, str) else value
    if isinstance(value, (dict, list)):
        raise ArgValueError(f"Expected a scalar value for {arg}, got {value!r}")
    return value if isinstance(value, str) else json.dumps(value) if value is not None else value


def parse_complex(tokens: list[str] | str, shape, arg: str) -> Any:
    """Parse the command-line token(s) of a structure/map/list argument."""
    if isinstance(tokens, str):
        tokens = [tokens]
    tokens = [_expand_file(t) for t in tokens]
    tokens = [t.decode("utf-8") if isinstance(t, bytes) else t for t in tokens]
    t = shape.type_name
    if t == "list":
        if len(tokens) == 1 and tokens[0].lstrip().startswith("["):
            return _load_json(tokens[0], arg)
        member = shape.member
        out = []
        for tok in tokens:
            if member.type_name in ("structure", "map"):
                if _looks_like_json(tok):
                    out.append(_load_json(tok, arg))
                else:
                    out.append(_coerce(parse_shorthand(tok), member, arg))
            elif member.type_name == "list":
                out.append(parse_complex([tok], member, arg))
            else:
                out.append(_coerce_scalar(tok, member, arg))
        return out
    # structure or map; several tokens are merged.
    merged: dict[str, Any] = {}
    for tok in tokens:
        if _looks_like_json(tok):
            val = _load_json(tok, arg)
            if not isinstance(val, dict):
                raise ArgValueError(f"Expected a JSON object for {arg}")
        else:
            val = _coerce(parse_shorthand(tok), shape, arg)
        merged.update(val)
    return merged


# --------------------------------------------------------------------------
# Argument parser construction
# --------------------------------------------------------------------------

_TAG_RE = re.compile(r"<[^>]+>")


def _doc(text: str | None, limit: int = 240) -> str:
    if not text:
        return ""
    text = html.unescape(_TAG_RE.sub("", text))
    text = " ".join(text.split())
    m = re.match(r"(.+?\.)(\s|$)", text)
    if m:
        text = m.group(1)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text.replace("%", "%%")


def _add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    g = parser.add_argument_group("global options")
    g.add_argument("--endpoint-url", dest="g_endpoint_url", default=default, metavar="URL",
                   help="Arca server URL (default: $ARCA_ENDPOINT_URL or " + DEFAULT_ENDPOINT + ")")
    g.add_argument("--region", dest="g_region", default=default, metavar="REGION",
                   help="region name (default: $AWS_REGION, $AWS_DEFAULT_REGION or "
                        + DEFAULT_REGION + ")")
    g.add_argument("--query", dest="g_query", default=default, type=_compile_query,
                   metavar="JMESPATH",
                   help="JMESPath query applied to the response")
    g.add_argument("--output", dest="g_output", default=default, choices=("json", "text"),
                   help="output format (default: json)")
    g.add_argument("--profile", dest="g_profile", default=default, metavar="PROFILE",
                   help="AWS credentials profile")
    g.add_argument("--no-paginate", dest="g_no_paginate", action="store_true",
                   default=default, help="disable automatic pagination")
    g.add_argument("--no-verify-ssl", dest="g_no_verify_ssl", action="store_true",
                   default=default, help="do not verify TLS certificates")
    g.add_argument("--no-cli-pager", dest="g_no_cli_pager", action="store_true",
                   default=default, help=argparse.SUPPRESS)


def _compile_query(text: str):
    import jmespath
    try:
        return jmespath.compile(text)
    except Exception as exc:  # jmespath.exceptions.ParseError and friends
        raise argparse.ArgumentTypeError(f"Bad value for --query {text}: {exc}") from None


class _Arg:
    """Metadata about one operation member exposed as a CLI option."""

    def __init__(self, name: str, shape, required: bool):
        self.name = name
        self.shape = shape
        self.required = required
        self.flag = "--" + xform_name(name, "-")


def _op_args(op_model) -> list[_Arg]:
    shape = op_model.input_shape
    if shape is None:
        return []
    required = set(shape.required_members)
    return [_Arg(n, s, n in required) for n, s in shape.members.items()]


def _can_paginate(op_model) -> bool:
    if op_model.service_model.service_name != SERVICE:
        return False
    try:
        return bool(botocore.session.get_session().get_paginator_model(SERVICE)
                    .get_paginator(op_model.name))
    except Exception:
        return False


def build_parser(cli_name: str, relax_required: bool = False
                 ) -> tuple[argparse.ArgumentParser, Any, list[_Arg]]:
    service, name = _op_map()[cli_name]
    op_model = _service_model(service).operation_model(name)
    parser = argparse.ArgumentParser(
        prog=f"arca {cli_name}",
        description=_doc(op_model.documentation, limit=1000),
        allow_abbrev=False,
    )
    args = _op_args(op_model)
    req_group = parser.add_argument_group("required arguments")
    opt_group = parser.add_argument_group("optional arguments")
    for a in args:
        group = req_group if a.required else opt_group
        help_text = _doc(a.shape.documentation)
        t = a.shape.type_name
        dest = "m_" + a.name
        kw = {"required": True} if a.required and not relax_required else {}
        if t == "boolean":
            group.add_argument(a.flag, dest=dest, action="store_const", const=True,
                               default=None, help=help_text)
            group.add_argument("--no-" + a.flag[2:], dest=dest, action="store_const",
                               const=False, default=None, help=argparse.SUPPRESS)
        elif t in ("integer", "long"):
            group.add_argument(a.flag, dest=dest, **kw, type=int, metavar="INT", help=help_text)
        elif t in ("float", "double"):
            group.add_argument(a.flag, dest=dest, **kw, type=float, metavar="NUM", help=help_text)
        elif t == "blob":
            group.add_argument(a.flag, dest=dest, **kw, metavar="PATH",
                               help=(help_text + " (a file path, or file://PATH)").strip())
        elif t in ("list", "structure", "map"):
            metavar = "VALUE"
            group.add_argument(a.flag, dest=dest, **kw, nargs="+", metavar=metavar,
                               help=(help_text + " (shorthand, JSON or file://)").strip())
        else:
            if a.shape.enum:
                help_text = (help_text + " One of: " + ", ".join(a.shape.enum) + ".").strip()
            group.add_argument(a.flag, dest=dest, **kw, metavar=xform_name(a.name).upper(),
                               help=help_text)
    if op_model.has_streaming_output:
        parser.add_argument("outfile", help="file to write the streamed response body to "
                                            "('-' for standard output)")
    opt_group.add_argument("--cli-input-json", dest="cli_input_json", metavar="JSON",
                           help="read arguments from a JSON string or file://")
    if _can_paginate(op_model):
        opt_group.add_argument("--max-items", dest="p_max_items", type=int, metavar="INT",
                               help="total number of items to return (auto-pagination)")
        opt_group.add_argument("--starting-token", dest="p_starting_token", metavar="TOKEN",
                               help="token from a previous truncated --max-items response")
        opt_group.add_argument("--page-size", dest="p_page_size", type=int, metavar="INT",
                               help="page size used for each service call")
    _add_global_options(parser, suppress=True)
    return parser, op_model, args


def _split_global_prefix(argv: list[str]) -> tuple[list[str], str | None, list[str]]:
    """Split argv into (global options before op, op name, rest)."""
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in _GLOBAL_VALUE_OPTS:
            i += 2
            continue
        if tok.startswith("-"):
            i += 1
            continue
        return argv[:i], tok, argv[i + 1:]
    return argv, None, []


def _usage_error(message: str, prog: str = "arca") -> int:
    sys.stderr.write(f"usage: {prog} [global options] <operation> [arguments]\n")
    sys.stderr.write(f"{prog}: error: {message}\n")
    return EXIT_USAGE


def _print_operation_list(stream: TextIO) -> None:
    stream.write("usage: arca [global options] <operation> [arguments]\n\n"
                 "CodeArtifact-compatible operations (same arguments as `aws codeartifact`):\n")
    for name in operation_names():
        stream.write(f"  {name}\n")
    stream.write("\nArca's own operations:\n")
    for name in arca_operation_names():
        stream.write(f"  {name}\n")
    stream.write("\nRun `arca <operation> --help` for the arguments of an operation.\n")


# --------------------------------------------------------------------------
# Output formatting
# --------------------------------------------------------------------------

def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, _dt.date):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray)):
        try:
            return bytes(obj).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(obj)).decode("ascii")
    return obj


def _text_scalar(v: Any) -> str:
    return str(v)


def format_text(data: Any, stream: TextIO) -> None:
    """AWS-CLI-like text output."""
    _fmt_text(data, stream, None, None)


def _fmt_text(item: Any, stream: TextIO, identifier: str | None, scalar_keys) -> None:
    if isinstance(item, dict):
        _fmt_text_dict(item, stream, identifier, scalar_keys)
    elif isinstance(item, list):
        _fmt_text_list(item, stream, identifier)
    else:
        stream.write(_text_scalar(item) + "\n")


def _fmt_text_list(items: list, stream: TextIO, identifier: str | None) -> None:
    if not items:
        return
    if any(isinstance(el, dict) for el in items):
        keys = sorted({k for el in items if isinstance(el, dict)
                       for k, v in el.items() if not isinstance(v, (dict, list))})
        for el in items:
            _fmt_text(el, stream, identifier, keys)
        return
    scalars = [el for el in items if not isinstance(el, (dict, list))]
    nested = [el for el in items if isinstance(el, (dict, list))]
    if scalars:
        if identifier is not None:
            for el in scalars:
                stream.write(f"{identifier.upper()}\t{_text_scalar(el)}\n")
        else:
            stream.write("\t".join(_text_scalar(el) for el in scalars) + "\n")
    for el in nested:
        _fmt_text(el, stream, identifier, None)


def _fmt_text_dict(item: dict, stream: TextIO, identifier: str | None, scalar_keys) -> None:
    scalars: list[str] = []
    nested: list[tuple[str, Any]] = []
    if scalar_keys is None:
        for k in sorted(item):
            v = item[k]
            if isinstance(v, (dict, list)):
                nested.append((k, v))
            else:
                scalars.append(_text_scalar(v))
    else:
        scalars = [_text_scalar(item.get(k, "")) for k in scalar_keys]
        nested = [(k, item[k]) for k in sorted(set(item) - set(scalar_keys))]
    if scalars:
        if identifier is not None:
            scalars.insert(0, identifier.upper())
        stream.write("\t".join(scalars) + "\n")
    for k, v in nested:
        _fmt_text(v, stream, k, None)


def emit(result: Any, query, output: str, stream: TextIO) -> None:
    """Apply --query, then print in the chosen format (mirrors AWS CLI rules)."""
    data = _jsonable(result)
    if query is not None:
        data = query.search(data)
    if output == "text":
        if data == {}:
            return
        if data is None:
            stream.write("None\n")
            return
        format_text(data, stream)
    else:
        if data == {}:
            return
        stream.write(json.dumps(data, indent=4, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------

def _build_params(ns: argparse.Namespace, parser, args: list[_Arg], open_files: list) -> dict:
    params: dict[str, Any] = {}
    if getattr(ns, "cli_input_json", None):
        raw = _expand_file(ns.cli_input_json)
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        loaded = _load_json(raw, "--cli-input-json")
        if not isinstance(loaded, dict):
            raise ArgValueError("--cli-input-json must be a JSON object")
        params.update(loaded)
    for a in args:
        value = getattr(ns, "m_" + a.name, None)
        if value is None:
            continue
        t = a.shape.type_name
        if t == "blob":
            path = value
            for prefix in ("fileb://", "file://"):
                if path.startswith(prefix):
                    path = path[len(prefix):]
            path = os.path.expanduser(path)
            try:
                fh = open(path, "rb")
            except OSError as exc:
                raise ArgValueError(f"argument {a.flag}: cannot open {path}: "
                                    f"{exc.strerror or exc}") from None
            open_files.append(fh)
            params[a.name] = fh
        elif t in ("list", "structure", "map"):
            params[a.name] = parse_complex(value, a.shape, a.flag)
        elif t in ("string",):
            expanded = _expand_file(value)
            params[a.name] = expanded.decode("utf-8") if isinstance(expanded, bytes) else expanded
        else:
            params[a.name] = value
    missing = [a.flag for a in args if a.required and a.name not in params]
    if missing:
        parser.error("the following arguments are required: " + ", ".join(missing))
    return params


def _resolve_globals(ns: argparse.Namespace) -> dict:
    def g(name, default=None):
        v = getattr(ns, name, None)
        return default if v is None else v

    client = client_settings(g("g_endpoint_url"), g("g_region"))
    return {
        "endpoint_url": client.endpoint_url,
        "region": client.region,
        "query": g("g_query"),
        "output": g("g_output") or "json",
        "profile": g("g_profile"),
        "no_paginate": bool(g("g_no_paginate", False)),
        "verify": not bool(g("g_no_verify_ssl", False)),
    }


def _call(client, op_model, params: dict, ns: argparse.Namespace, glob: dict) -> dict:
    method = xform_name(op_model.name)
    paginate = (
        _can_paginate(op_model)
        and not glob["no_paginate"]
        and not any(m in params for m in _PAGINATION_MEMBERS)
    )
    if paginate:
        cfg = {}
        if getattr(ns, "p_max_items", None) is not None:
            cfg["MaxItems"] = ns.p_max_items
        if getattr(ns, "p_starting_token", None):
            cfg["StartingToken"] = ns.p_starting_token
        if getattr(ns, "p_page_size", None) is not None:
            cfg["PageSize"] = ns.p_page_size
        paginator = client.get_paginator(method)
        result = paginator.paginate(**params, PaginationConfig=cfg).build_full_result()
    else:
        result = getattr(client, method)(**params)
    if isinstance(result, dict):
        result = dict(result)
        result.pop("ResponseMetadata", None)
    return result


def _write_stream(body, outfile: str) -> None:
    if outfile == "-":
        out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
        if out is None:
            sys.stdout.write(body.read().decode("utf-8", "replace"))
            return
        for chunk in iter(lambda: body.read(1024 * 1024), b""):
            out.write(chunk)
        out.flush()
        return
    with open(outfile, "wb") as fh:
        for chunk in iter(lambda: body.read(1024 * 1024), b""):
            fh.write(chunk)


def run_operation(argv: list[str]) -> int:
    """Run one CodeArtifact-style operation from command-line arguments.

    Global options (--endpoint-url, --region, --query, --output, --profile) may
    appear before or after the operation name. Returns the process exit code.
    """
    try:
        return _run(list(argv))
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130


def _run(argv: list[str]) -> int:
    from botocore.exceptions import (
        BotoCoreError, ClientError, ConnectionError as BotoConnectionError,
        EndpointConnectionError, HTTPClientError, NoCredentialsError,
        NoRegionError, ParamValidationError, PartialCredentialsError,
        ProfileNotFound,
    )

    prefix, op_name, rest = _split_global_prefix(argv)
    if op_name == "help" or (op_name is None and any(t in ("-h", "--help") for t in prefix)):
        _print_operation_list(sys.stdout)
        return EXIT_OK
    if op_name is None:
        return _usage_error("the following arguments are required: operation")
    ops = _op_map()
    if op_name not in ops:
        msg = f"argument operation: Invalid choice '{op_name}'"
        close = difflib.get_close_matches(op_name, list(ops), n=3)
        if close:
            msg += ", maybe you meant: " + ", ".join(close)
        else:
            msg += " (run `arca help` for the list of operations)"
        return _usage_error(msg)

    parser, op_model, args = build_parser(
        op_name, relax_required=any(t == "--cli-input-json" or t.startswith("--cli-input-json=")
                                    for t in rest))
    global_parser = argparse.ArgumentParser(prog="arca", add_help=False, allow_abbrev=False)
    _add_global_options(global_parser, suppress=True)

    open_files: list = []
    try:
        try:
            gns, unknown = global_parser.parse_known_args(prefix)
            if unknown:
                if any(t in ("-h", "--help") for t in unknown):
                    parser.print_help()
                    return EXIT_OK
                global_parser.error("unrecognized arguments: " + " ".join(unknown))
            ns = parser.parse_args(rest, namespace=gns)
            try:
                params = _build_params(ns, parser, args, open_files)
            except ArgValueError as exc:
                parser.error(str(exc))
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (EXIT_USAGE if exc.code else 0)

        glob = _resolve_globals(ns)
        try:
            client = make_client(glob["endpoint_url"], glob["region"], glob["profile"],
                                 **({} if glob["verify"] else {"verify": False}),
                                 **({} if op_model.service_model.service_name == SERVICE
                                    else {"service": op_model.service_model.service_name}))
            result = _call(client, op_model, params, ns, glob)
            if op_model.has_streaming_output and isinstance(result, dict):
                payload = op_model.output_shape.serialization.get("payload")
                body = result.pop(payload, None) if payload else None
                if body is not None:
                    _write_stream(body, ns.outfile)
                    if ns.outfile == "-":
                        return EXIT_OK
        except ClientError as exc:
            sys.stderr.write(f"\n{_client_error_message(exc, op_model.name)}\n")
            return EXIT_SERVICE
        except ParamValidationError as exc:
            sys.stderr.write(f"\n{exc}\n")
            return EXIT_PARAM
        except (NoCredentialsError, PartialCredentialsError, ProfileNotFound,
                NoRegionError) as exc:
            sys.stderr.write(f"\n{exc}\n")
            return EXIT_CONFIG
        except EndpointConnectionError as exc:
            sys.stderr.write(f"\n{exc}\n")
            return EXIT_OTHER
        except (BotoConnectionError, HTTPClientError) as exc:
            sys.stderr.write(f"\nCould not connect to the endpoint URL "
                             f"\"{glob['endpoint_url']}\": {_short(exc)}\n")
            return EXIT_OTHER
        except BotoCoreError as exc:
            sys.stderr.write(f"\n{exc}\n")
            return EXIT_OTHER
        except OSError as exc:  # e.g. cannot write outfile
            sys.stderr.write(f"\n{exc}\n")
            return EXIT_OTHER

        try:
            emit(result, glob["query"], glob["output"], sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            return EXIT_OK
        return EXIT_OK
    finally:
        for fh in open_files:
            try:
                fh.close()
            except Exception:
                pass


def _client_error_message(exc, op_name: str) -> str:
    err = getattr(exc, "response", {}).get("Error", {}) or {}
    code = err.get("Code") or "Unknown"
    message = err.get("Message")
    if message is None:
        return str(exc)
    return f"An error occurred ({code}) when calling the {op_name} operation: {message}"


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else exc.__class__.__name__


__all__ = [
    "run_operation", "operation_names", "make_client", "parse_shorthand", "parse_complex",
    "format_text", "emit", "build_parser",
]


if __name__ == "__main__":  # pragma: no cover - convenience for manual testing
    sys.exit(run_operation(sys.argv[1:]))
