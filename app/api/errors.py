"""Control plane: ArcaError → CodeArtifact's rest-json error (x-amzn-ErrorType + JSON body)."""

from __future__ import annotations

import json

from starlette.responses import Response

from app.domain.errors import ArcaError


def error_response(code: str, message: str, status: int, **extra) -> Response:
    body = {"message": message, **{k: v for k, v in extra.items() if v is not None}}
    return Response(json.dumps(body), status_code=status, media_type="application/json",
                    headers={"x-amzn-ErrorType": code})


def arca_error_response(exc: ArcaError) -> Response:
    status = 400 if exc.status == 413 else exc.status
    extra = {"resourceId": exc.resource_id, "resourceType": exc.resource_type}
    if exc.code == "ValidationException":
        extra["reason"] = "FIELD_VALIDATION_FAILED"
    return error_response(exc.code, exc.message, status, **extra)
