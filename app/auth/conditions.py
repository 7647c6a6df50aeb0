"""The Condition element of a permission policy: IAM's operators over the condition keys Arca knows.

`parse_block` checks a Condition block when a policy is stored (an unknown operator, an unknown key,
an operator of the wrong type for its key or a value of the wrong type is a ValidationError naming
it) and turns it into `Condition`s; `Condition.holds` decides one against the request's `Context`.
Evaluation follows IAM: several operators, and several keys under one operator, must all hold; the
values of one key are alternatives (any one matches; for a negated operator, none may); a key that
is absent from the request makes a condition false, except for negated operators, `...IfExists`
(true) and `Null` (which tests exactly that); `ForAllValues:` is true and `ForAnyValue:` false over
an absent key."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, Callable

from app.domain.errors import ValidationError

# Value types of keys and the operator families that apply to each (Null applies to every key).
STRING, ARN, IP, DATE, EPOCH, BOOL = "String", "ARN", "IP address", "Date", "Date or Numeric", "Boolean"
FAMILIES = {STRING: {"String"}, ARN: {"String", "Arn"}, IP: {"Ip"}, DATE: {"Date"},
            EPOCH: {"Date", "Numeric"}, BOOL: {"Bool"}}

# Lower-cased names (condition key names are case-insensitive in IAM) -> (canonical spelling, type).
KEYS = {k.lower(): (k, t) for k, t in (
    ("aws:PrincipalArn", ARN), ("aws:username", STRING), ("aws:SourceIp", IP),
    ("aws:CurrentTime", DATE), ("aws:EpochTime", EPOCH), ("aws:SecureTransport", BOOL))}
TAG_KEYS = {"aws:resourcetag/": "aws:ResourceTag/", "aws:principaltag/": "aws:PrincipalTag/"}
MAX_TAG_KEY = 128
# A web identity token's claim in a trust policy: `{provider host/path}:{claim}`, e.g.
# token.actions.githubusercontent.com:sub (the provider URL without https://, as in IAM).
_CLAIM_KEY = re.compile(r"(?P<provider>[a-z0-9.-]+(?::[0-9]+)?(?:/[^\s:]*)?):(?P<claim>[a-z0-9_.-]+)")

# Operator -> (family, negated). ArnEquals and ArnLike are the same test in IAM (both take wildcards).
OPERATORS = {
    "StringEquals": ("String", False), "StringNotEquals": ("String", True),
    "StringEqualsIgnoreCase": ("String", False), "StringNotEqualsIgnoreCase": ("String", True),
    "StringLike": ("String", False), "StringNotLike": ("String", True),
    "NumericEquals": ("Numeric", False), "NumericNotEquals": ("Numeric", True),
    "NumericLessThan": ("Numeric", False), "NumericLessThanEquals": ("Numeric", False),
    "NumericGreaterThan": ("Numeric", False), "NumericGreaterThanEquals": ("Numeric", False),
    "DateEquals": ("Date", False), "DateNotEquals": ("Date", True),
    "DateLessThan": ("Date", False), "DateLessThanEquals": ("Date", False),
    "DateGreaterThan": ("Date", False), "DateGreaterThanEquals": ("Date", False),
    "Bool": ("Bool", False),
    "IpAddress": ("Ip", False), "NotIpAddress": ("Ip", True),
    "ArnEquals": ("Arn", False), "ArnLike": ("Arn", False), "ArnNotEquals": ("Arn", True),
    "ArnNotLike": ("Arn", True),
    "Null": ("Null", False),
}
SET_PREFIXES = ("ForAllValues:", "ForAnyValue:")
_COMPARE = {"Equals": lambda a, b: a == b, "LessThan": lambda a, b: a < b, "LessThanEquals": lambda a, b: a <= b,
            "GreaterThan": lambda a, b: a > b, "GreaterThanEquals": lambda a, b: a >= b}


@lru_cache(maxsize=4096)
def glob(pattern: str, ignore_case: bool = False) -> re.Pattern:
    """IAM's wildcards: `*` any run of characters, `?` one character; everything else is literal
    (unlike fnmatch, `[` is not a character class)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(rx, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def is_arn(value: str) -> bool:
    return value.startswith("arn:") and len(value.split(":", 5)) == 6


@dataclass
class Context:
    """What a request tells conditions. Absent facts are None; resource tags are looked up only when
    a condition asks (`resource_tags` is called at most once)."""

    principal_arn: str | None = None
    username: str | None = None
    source_ip: str | None = None
    secure_transport: bool | None = None
    now: datetime | None = None
    resource_tags: Callable[[], dict[str, str]] | None = None
    principal_tags: Callable[[], dict[str, str]] | None = None
    # A web identity token's claims, by lower-cased condition key ("host:sub" -> ["repo:o/r:..."])
    claims: dict[str, list[str]] | None = None
    _memo: dict = field(default_factory=dict, repr=False)

    def values(self, key: str) -> list:
        """The request's values of a (lower-cased) key, typed for its operators; [] when absent."""
        if self.claims is not None and not key.startswith("aws:"):
            return list(self.claims.get(key, []))
        if key.startswith(("aws:resourcetag/", "aws:principaltag/")):
            kind, _, tag = key.partition("/")
            tags = self._tags(kind)
            # Tag keys in a condition key are case-insensitive (IAM); a resource may hold several
            # spellings, and then every one of their values must satisfy the condition.
            return [v for k, v in tags.items() if k.lower() == tag]
        if key == "aws:principalarn":
            return [self.principal_arn] if self.principal_arn is not None else []
        if key == "aws:username":
            return [self.username] if self.username is not None else []
        if key == "aws:sourceip":
            return _address(self.source_ip) if self.source_ip else []
        if key == "aws:securetransport":
            return [self.secure_transport] if self.secure_transport is not None else []
        if key == "aws:currenttime":
            return [self.now.timestamp()] if self.now is not None else []
        if key == "aws:epochtime":
            return [int(self.now.timestamp())] if self.now is not None else []
        return []

    def _tags(self, kind: str) -> dict[str, str]:
        if kind not in self._memo:
            lookup = self.resource_tags if kind == "aws:resourcetag" else self.principal_tags
            self._memo[kind] = lookup() if lookup is not None else {}
        return self._memo[kind]


def _address(text: str) -> list:
    """[the address] of a peer (an IPv4-mapped IPv6 peer as IPv4), or [] if it is not an IP address."""
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return []
    return [addr.ipv4_mapped or addr] if isinstance(addr, ipaddress.IPv6Address) else [addr]


@dataclass(frozen=True)
class Condition:
    operator: str  # as written, for messages
    base: str
    family: str
    negated: bool
    quantifier: str | None  # "ForAllValues" | "ForAnyValue" | None
    if_exists: bool
    key: str  # lower-cased
    values: tuple

    def holds(self, ctx: Context) -> bool:
        present = ctx.values(self.key)
        if self.family == "Null":  # "true": the key must be absent; "false": present
            return any(want == (not present) for want in self.values)
        if not present:
            if self.if_exists:
                return True
            if self.quantifier:
                return self.quantifier == "ForAllValues"
            return self.negated
        if self.quantifier == "ForAnyValue":
            return any(self._holds_for(v) for v in present)
        return all(self._holds_for(v) for v in present)

    def _holds_for(self, value) -> bool:
        matched = any(self._matches(value, p) for p in self.values)
        return not matched if self.negated else matched

    def _matches(self, value, want) -> bool:
        """The positive form of the operator for one request value and one policy value."""
        base = self.base
        if self.family == "String":
            if "Like" in base:
                return bool(want.fullmatch(value))
            return value.casefold() == want if "IgnoreCase" in base else value == want
        if self.family == "Arn":
            parts = value.split(":", 5)
            return len(parts) == 6 and all(p.fullmatch(v) for p, v in zip(want, parts))
        if self.family == "Ip":
            return value.version == want.version and value in want
        if self.family == "Bool":
            return value is want
        # Numeric and Date: compare numbers (dates as epoch seconds)
        op = base.removeprefix(self.family).replace("Not", "")
        return _COMPARE[op](value, want)


def parse_block(block: Any, where: str, variables: bool, claims: bool = False) -> tuple[Condition, ...]:
    """A Condition element -> its conditions; `variables` is True when `${...}` would be a policy
    variable (Version 2012-10-17), which Arca does not expand and so refuses; `claims`: a trust
    policy's block, whose keys may also name a web identity token's claims (strings)."""
    if not isinstance(block, dict):
        raise ValidationError(f"{where}: Condition must be an object of operators")
    out = []
    for operator, keys in block.items():
        base, quantifier, if_exists = _operator(operator, where)
        family, negated = OPERATORS[base]
        if not isinstance(keys, dict):
            raise ValidationError(f"{where}: Condition {operator} must be an object of condition keys")
        for key, raw in keys.items():
            lower = _key(key, where, claims)
            _check_family(operator, family, key, lower, quantifier, where)
            values = tuple(_value(family, base, v, f"{where}: Condition {operator} {key}", variables)
                           for v in _values(raw, f"{where}: Condition {operator} {key}"))
            out.append(Condition(operator, base, family, negated, quantifier, if_exists, lower, values))
    return tuple(out)


def _operator(operator: str, where: str) -> tuple[str, str | None, bool]:
    base, quantifier = operator, None
    for prefix in SET_PREFIXES:
        if operator.startswith(prefix):
            base, quantifier = operator[len(prefix):], prefix[:-1]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in OPERATORS:
        raise ValidationError(f"{where}: Condition operator {operator!r} is not supported "
                              f"(supported: {', '.join(OPERATORS)}, with ...IfExists and "
                              f"ForAllValues:/ForAnyValue:)")
    if base == "Null" and (if_exists or quantifier):
        raise ValidationError(f"{where}: Condition operator {operator!r} is not supported "
                              f"(Null takes neither IfExists nor a set prefix)")
    return base, quantifier, if_exists


def claim_key(key: str) -> bool:
    return not key.startswith("aws:") and _CLAIM_KEY.fullmatch(key) is not None


def _key(key: str, where: str, claims: bool = False) -> str:
    lower = key.lower() if isinstance(key, str) else ""
    if lower in KEYS:
        return lower
    if claims and claim_key(lower):
        return lower
    for prefix, spelled in TAG_KEYS.items():
        if lower.startswith(prefix):
            tag = key[len(prefix):]
            if not 1 <= len(tag) <= MAX_TAG_KEY:
                raise ValidationError(f"{where}: Condition key {key!r} must name a tag key of 1-{MAX_TAG_KEY} "
                                      f"characters ({spelled}KEY)")
            return lower
    supported = [k for k, _ in KEYS.values()] + [p + "KEY" for p in TAG_KEYS.values()]
    if claims:
        supported.append("PROVIDER:CLAIM (e.g. token.actions.githubusercontent.com:sub)")
    raise ValidationError(f"{where}: Condition key {key!r} is not supported (supported: {', '.join(supported)})")


def _check_family(operator: str, family: str, key: str, lower: str, quantifier: str | None, where: str) -> None:
    if family == "Null":
        return
    ktype = STRING if lower.startswith(tuple(TAG_KEYS)) or lower not in KEYS else KEYS[lower][1]
    if family not in FAMILIES[ktype]:
        fits = sorted(op for op, (fam, _) in OPERATORS.items() if fam in FAMILIES[ktype] or fam == "Null")
        raise ValidationError(f"{where}: Condition operator {operator!r} does not apply to {key} "
                              f"(its type is {ktype}; use {', '.join(fits)})")


def _values(raw: Any, where: str) -> list:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise ValidationError(f"{where}: must have at least one value")
    return values


def _value(family: str, base: str, v: Any, where: str, variables: bool):
    """One policy value, checked and parsed for its operator."""
    if family in ("Bool", "Null"):
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise ValidationError(f"{where}: value {v!r} must be true or false")
    if family == "Numeric":
        number = _number(v)
        if number is None:
            raise ValidationError(f"{where}: value {v!r} must be a number")
        return number
    if family == "Date":
        when = _date(v)
        if when is None:
            raise ValidationError(f"{where}: value {v!r} must be an ISO 8601 date-time "
                                  f"(e.g. 2030-01-01T00:00:00Z) or epoch seconds")
        return when
    if not isinstance(v, str):
        raise ValidationError(f"{where}: value {v!r} must be a string")
    if variables and "${" in v:
        raise ValidationError(f"{where}: value {v!r} uses a policy variable, which Arca does not expand")
    if family == "Ip":
        try:
            return ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValidationError(f"{where}: value {v!r} must be an IP address or CIDR block") from None
    if family == "Arn":
        if not is_arn(v):
            raise ValidationError(f"{where}: value {v!r} must be an ARN "
                                  f"(arn:partition:service:region:account:resource)")
        return tuple(glob(part) for part in v.split(":", 5))
    if "Like" in base:
        return glob(v)
    return v.casefold() if "IgnoreCase" in base else v


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        number = float(v)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _date(v: Any) -> float | None:
    """Epoch seconds of an ISO 8601 date/date-time (UTC unless it names an offset) or epoch number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if not isinstance(v, str):
        return None
    if re.fullmatch(r"\d+", v):
        return float(v)
    try:
        parsed = datetime.fromisoformat(v)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(v), datetime.min.time())
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
