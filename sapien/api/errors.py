"""The API area's domain errors; each carries the HTTP status its problem+json answer uses."""

from __future__ import annotations

from sapien.errors import DomainError


class ApiError(DomainError):
    status = 422
    slug = "invalid-request"


class NotFound(ApiError):
    """The object does not exist or belongs to another organization (both answer 404, never 403)."""

    status = 404
    slug = "not-found"


class Unauthorized(ApiError):
    status = 401
    slug = "unauthorized"


class Forbidden(ApiError):
    status = 403
    slug = "forbidden"


class Conflict(ApiError):
    status = 409
    slug = "conflict"


class RateLimited(ApiError):
    status = 429
    slug = "rate-limited"

    def __init__(self, message, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
