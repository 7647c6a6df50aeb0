"""Arca's own API model: a botocore service model (`arca`, rest-json, signed as `codeartifact`)
for the operations CodeArtifact lacks, shipped in the package.

The `arca` CLI builds its subcommands from it and the control plane routes by it; boto3 users
get `boto3.client("arca", endpoint_url=...)` by putting `DATA_PATH` on `AWS_DATA_PATH`:

    export AWS_DATA_PATH=$(python -c 'import app.arca_model as m; print(m.DATA_PATH)')

To add an operation: describe it in data/arca/<version>/service-2.json and register its handler
in app/api/ops_arca.py under the operation's name."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import botocore.session

SERVICE = "arca"
DATA_PATH = Path(__file__).resolve().parent / "data"


@lru_cache(maxsize=1)
def session() -> botocore.session.Session:
    """A botocore session that knows the `arca` service besides the ones botocore ships."""
    s = botocore.session.get_session()
    loader = s.get_component("data_loader")
    if str(DATA_PATH) not in loader.search_paths:
        loader.search_paths.append(str(DATA_PATH))
    return s


@lru_cache(maxsize=1)
def service_model():
    return session().get_service_model(SERVICE)


def http_routes() -> dict[tuple[str, str], str]:
    """(method, request path) -> operation name, from the model's `http` sections."""
    model = service_model()
    out = {}
    for name in model.operation_names:
        http = model.operation_model(name).http
        out[(http["method"], http["requestUri"].split("?")[0])] = name
    return out
