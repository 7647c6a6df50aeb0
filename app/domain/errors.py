"""The one exception tree. Transports map these to HTTP statuses and CodeArtifact error codes
(app/api/errors.py for the control plane, app/formats/http.py for the data plane)."""

from __future__ import annotations


class ArcaError(Exception):
    code = "InternalServerException"
    status = 500
    retry_after: int | None = None  # seconds, for errors that pass (answered as Retry-After)

    def __init__(self, message: str, *, resource_id: str | None = None, resource_type: str | None = None):
        super().__init__(message)
        self.message = message
        self.resource_id = resource_id
        self.resource_type = resource_type


class ValidationError(ArcaError):
    code = "ValidationException"
    status = 400


class NotFound(ArcaError):
    code = "ResourceNotFoundException"
    status = 404


class Conflict(ArcaError):
    code = "ConflictException"
    status = 409


class AccessDenied(ArcaError):
    code = "AccessDeniedException"
    status = 403


class Unauthenticated(ArcaError):
    """No, invalid or expired credentials (data plane 401)."""

    code = "UnauthorizedException"
    status = 401


class QuotaExceeded(ArcaError):
    code = "ServiceQuotaExceededException"
    status = 402


class PayloadTooLarge(ArcaError):
    code = "ValidationException"
    status = 413


class NotSupported(ArcaError):
    """A request the protocol defines that this repository cannot answer (npm audit without a
    registry to ask): 501, with the reason and what to do about it."""

    code = "ValidationException"
    status = 501


class StorageUnavailable(ArcaError):
    code = "InternalServerException"
    status = 503
    retry_after = 5


class DatabaseUnavailable(ArcaError):
    """The database cannot be reached (stopped, restarting, overloaded): the request changed
    nothing and may be retried."""

    code = "InternalServerException"
    status = 503
    retry_after = 5


class UpstreamUnavailable(ArcaError):
    code = "InternalServerException"
    status = 502


class TooManyRequests(ArcaError):
    """Refused for a while (console sign-in throttling): answered 429 with Retry-After."""

    code = "ThrottlingException"
    status = 429

    def __init__(self, message: str, *, retry_after: int, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
