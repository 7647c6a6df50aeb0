"""Control plane: ArcaError → CodeArtifact's rest-json error (x-amzn-ErrorType + JSON body)."""

from __future__ import annotations

import json

from starlette.responses import Response

from app.domain.errors import ArcaError


def error_response(code: str, message: str, status: int, retry_after: int | None = None, **extra) -> Response:
    body = {"message": message, **{k: v for k, v in extra.items() if v is not None}}
    headers = {"x-amzn-ErrorType": code}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def arca_error_response(exc: ArcaError) -> Response:
    status = 400 if exc.status == 413 else exc.status
    extra = {"resourceId": exc.resource_id, "resourceType": exc.resource_type}
    if exc.code == "ValidationException":
        extra["reason"] = "FIELD_VALIDATION_FAILED"
    return error_response(exc.code, exc.message, status, exc.retry_after, **extra)
