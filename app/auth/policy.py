"""IAM-style resource policies: parsing/validation and evaluation (explicit Deny > Allow > implicit deny)."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass

from app.domain.errors import ValidationError

MAX_POLICY_CHARS = 7168


@dataclass(frozen=True)
class Request:
    principal_arn: str
    action: str  # e.g. "codeartifact:ReadFromRepository"
    resource_arn: str


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_policy(document: str) -> dict:
    """Validate a policy document; raise ValidationError naming the problem."""
    if not document or len(document) > MAX_POLICY_CHARS:
        raise ValidationError(f"policyDocument must be 1-{MAX_POLICY_CHARS} characters")
    try:
        doc = json.loads(document)
    except ValueError as exc:
        raise ValidationError(f"policyDocument is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValidationError("policyDocument must be a JSON object")
    if doc.get("Version") not in ("2012-10-17", "2008-10-17"):
        raise ValidationError("policyDocument Version must be \"2012-10-17\"")
    statements = _as_list(doc.get("Statement"))
    if not statements:
        raise ValidationError("policyDocument must have at least one Statement")
    for i, st in enumerate(statements):
        where = f"Statement[{i}]" + (f" ({st.get('Sid')})" if isinstance(st, dict) and st.get("Sid") else "")
        if not isinstance(st, dict):
            raise ValidationError(f"{where} must be an object")
        if st.get("Effect") not in ("Allow", "Deny"):
            raise ValidationError(f"{where}: Effect must be Allow or Deny")
        if "Principal" not in st:
            raise ValidationError(f"{where}: Principal is required")
        p = st["Principal"]
        if p != "*" and not (isinstance(p, dict) and set(p) <= {"AWS"}):
            raise ValidationError(f"{where}: Principal must be \"*\" or {{\"AWS\": [ARNs]}}")
        actions = _as_list(st.get("Action"))
        if not actions:
            raise ValidationError(f"{where}: Action is required")
        for a in actions:
            if not isinstance(a, str) or not (a == "*" or a.startswith("codeartifact:") or a.startswith("sts:")):
                raise ValidationError(f"{where}: Action {a!r} must be codeartifact:* style")
        for r in _as_list(st.get("Resource", "*")):
            if not isinstance(r, str):
                raise ValidationError(f"{where}: Resource must be strings")
    return doc


def _principal_matches(st: dict, principal_arn: str, account: str) -> bool:
    p = st["Principal"]
    if p == "*":
        return True
    for arn in _as_list(p.get("AWS")):
        if arn == "*" or arn == principal_arn or arn in (account, f"arn:aws:iam::{account}:root"):
            return True
        if fnmatch.fnmatchcase(principal_arn, arn):
            return True
    return False


def _matches(patterns, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in _as_list(patterns))


def evaluate(docs: list[dict], req: Request, account: str) -> str:
    """'Deny', 'Allow' or 'None' (implicit deny) over all statements of all documents."""
    result = "None"
    for doc in docs:
        for st in _as_list(doc.get("Statement")):
            if not _principal_matches(st, req.principal_arn, account):
                continue
            if not _matches(st.get("Action"), req.action):
                continue
            if not _matches(st.get("Resource", "*"), req.resource_arn):
                continue
            if st["Effect"] == "Deny":
                return "Deny"
            result = "Allow"
    return result
