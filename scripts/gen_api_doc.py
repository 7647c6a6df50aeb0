#!/usr/bin/env python3
"""Render docs/api.md from a run of tests/test_api_conformance.py (scripts/gen-api-doc does both).

    ARCA_API_RESULTS=/tmp/r .venv/bin/pytest -q -n 2 tests/test_api_conformance.py
    .venv/bin/python scripts/gen_api_doc.py --results /tmp/r           # writes docs/api.md
    .venv/bin/python scripts/gen_api_doc.py --results /tmp/r --check   # also fails if an operation was not verified
    .venv/bin/python scripts/gen_api_doc.py --results /tmp/r --drift   # writes nothing; fails if docs/api.md differs

The test writes one JSON file per pytest worker into $ARCA_API_RESULTS; the files of the newest
run there are merged here. Nothing in the table is written by hand: method and URI come from
botocore's service model, the state from what the test observed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

import botocore.session

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api.md"

GROUPS = [
    ("Domains", ["CreateDomain", "DescribeDomain", "DeleteDomain", "ListDomains"]),
    ("Domain permissions policy", ["PutDomainPermissionsPolicy", "GetDomainPermissionsPolicy",
                                   "DeleteDomainPermissionsPolicy"]),
    ("Repositories", ["CreateRepository", "DescribeRepository", "UpdateRepository", "DeleteRepository",
                      "ListRepositories", "ListRepositoriesInDomain", "GetRepositoryEndpoint",
                      "AssociateExternalConnection", "DisassociateExternalConnection"]),
    ("Repository permissions policy", ["PutRepositoryPermissionsPolicy", "GetRepositoryPermissionsPolicy",
                                       "DeleteRepositoryPermissionsPolicy"]),
    ("Authorization", ["GetAuthorizationToken"]),
    ("Packages", ["ListPackages", "DescribePackage", "DeletePackage", "PutPackageOriginConfiguration"]),
    ("Package versions", ["ListPackageVersions", "DescribePackageVersion", "UpdatePackageVersionsStatus",
                          "CopyPackageVersions", "DeletePackageVersions", "DisposePackageVersions",
                          "PublishPackageVersion"]),
    ("Package version content", ["ListPackageVersionAssets", "GetPackageVersionAsset", "GetPackageVersionReadme",
                                 "ListPackageVersionDependencies"]),
    ("Package groups", ["CreatePackageGroup", "DescribePackageGroup", "UpdatePackageGroup",
                        "UpdatePackageGroupOriginConfiguration", "DeletePackageGroup", "ListPackageGroups",
                        "ListSubPackageGroups", "ListAssociatedPackages", "ListAllowedRepositoriesForGroup",
                        "GetAssociatedPackageGroup"]),
    ("Tags", ["TagResource", "UntagResource", "ListTagsForResource"]),
]
NEVER_RAISED = {"ThrottlingException": "Arca does not throttle",
                "InternalServerException": "raised only on a server fault"}


INPUT_NOTE = (
    "Input: each request's query parameters, headers and JSON body are read into the operation's input "
    "members as the model places them, and checked against the model before the operation runs (types, "
    "required members, lengths, ranges, list and map sizes, enums, patterns; unknown members and repeated "
    "query parameters are refused). A request that does not fit is a 400 `ValidationException` (`reason` "
    "`FIELD_VALIDATION_FAILED`) whose one-line message names the member, e.g. `Invalid value for "
    "tags[0].key: length 129 is more than the maximum 128`. A `nextToken` is opaque: signed with the server "
    "key, and valid only for the operation and the parameters (`maxResults` aside) of the listing that "
    "issued it."
)


def load(results: Path) -> dict:
    files = sorted(results.glob("*.json"))
    if not files:
        sys.exit(f"no results in {results}: run tests/test_api_conformance.py with ARCA_API_RESULTS={results}")
    docs = [json.loads(f.read_text()) for f in files]
    newest = max(docs, key=lambda d: d["written"])
    docs = [d for d in docs if d["run"] == newest["run"]]
    merged: dict[str, dict] = {}
    implemented: set[str] = set()
    for d in docs:
        implemented |= set(d["implemented"])
        for op, r in d["results"].items():
            m = merged.setdefault(op, {"ok": 0, "errors": {}, "paged": False})
            m["ok"] += r["ok"]
            m["paged"] = m["paged"] or r["paged"]
            for code, n in r["errors"].items():
                m["errors"][code] = m["errors"].get(code, 0) + n
    return {"results": merged, "implemented": implemented, "workers": len(docs)}


def render(data: dict) -> tuple[str, list[str]]:
    session = botocore.session.get_session()
    model = session.get_service_model("codeartifact")
    paginated = set(session.get_paginator_model("codeartifact")._paginator_config)
    results, implemented = data["results"], data["implemented"]
    problems = []
    ops_in_groups = [op for _, ops in GROUPS for op in ops]
    assert sorted(ops_in_groups) == sorted(model.operation_names), "GROUPS must list all operations"
    lines = [
        "# CodeArtifact API coverage",
        "",
        "<!-- GENERATED by scripts/gen_api_doc.py from a run of tests/test_api_conformance.py; do not edit. -->",
        "",
        f"Arca implements the {len(model.operation_names)} operations of the CodeArtifact control plane "
        f"(botocore service model `codeartifact` {model.api_version}) under `/v1/...`, so boto3 "
        "(`endpoint_url=`), the AWS CLI (`--endpoint-url`) and `arca <operation>` work unchanged.",
        "",
        "How to read the table: **State** is *verified* when the conformance test called the operation "
        "through boto3 and the response fit the model's output shape (member names, types, required "
        "members, enum values). **Error types seen** are the error codes the test provoked and checked, each "
        "one documented for that operation in the model. **Paged** marks List operations that the test "
        "read over more than one page with `maxResults`/`nextToken`.",
        "",
        INPUT_NOTE,
        "",
    ]
    for title, ops in GROUPS:
        lines += [f"## {title}", "", "| Operation | Method and URI | State | Successful calls | Error types seen | Paged |",
                  "|---|---|---|---:|---|---|"]
        for op in ops:
            http = model.operation_model(op).http
            r = results.get(op, {"ok": 0, "errors": {}, "paged": False})
            if op not in implemented:
                state = "not implemented"
                problems.append(f"{op}: not implemented")
            elif r["ok"]:
                state = "verified"
            else:
                state = "implemented, not verified"
                problems.append(f"{op}: no successful call in the test run")
            paged = "—"
            if op in paginated:
                paged = "yes" if r["paged"] else "**no**"
                if not r["paged"]:
                    problems.append(f"{op}: not paged over more than one page")
            errors = ", ".join(f"`{c}`" for c in sorted(r["errors"])) or "—"
            lines.append(f"| {op} | `{http['method']} {http['requestUri']}` | {state} | {r['ok']} | {errors} | "
                         f"{paged} |")
        lines.append("")
    documented = sorted({e.name for op in model.operation_names for e in model.operation_model(op).error_shapes})
    seen = {c for r in results.values() for c in r["errors"]}
    lines += ["## Error types", "", "| Error | HTTP | Seen in the test run |", "|---|---:|---|"]
    for name in documented:
        status = model.shape_for(name).metadata.get("error", {}).get("httpStatusCode", "")
        note = "yes" if name in seen else f"no ({NEVER_RAISED.get(name, 'not provoked')})"
        lines.append(f"| `{name}` | {status} | {note} |")
    lines.append("")
    lines += ["## Deviations from the model", "",
              "None: the conformance test fails on any, be it an error code the model does not list for the "
              "operation, or an output member, type, enum value or length outside the model.", ""]
    return "\n".join(lines), problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=os.environ.get("ARCA_API_RESULTS"),
                   help="the directory the test wrote its record to (default: $ARCA_API_RESULTS)")
    p.add_argument("--check", action="store_true", help="exit 1 if an operation was not verified or paged")
    p.add_argument("--drift", action="store_true",
                   help="write nothing; exit 1 (showing the difference) if OUTPUT is not what the results render")
    p.add_argument("--output", type=Path, default=OUT)
    args = p.parse_args()
    if args.results is None:
        p.error("--results (or ARCA_API_RESULTS) is required")
    text, problems = render(load(args.results))
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    failed = bool(args.check and problems)
    if args.drift:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            sys.stderr.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                       f"{args.output} (committed)", f"{args.output} (regenerated)"))
            print(f"{args.output} is out of date: run scripts/gen-api-doc and commit the result", file=sys.stderr)
            failed = True
        else:
            print(f"{args.output} is up to date")
    else:
        args.output.write_text(text)
        print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
