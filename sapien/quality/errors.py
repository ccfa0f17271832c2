"""Quality's domain errors."""

from __future__ import annotations

from sapien.errors import DomainError


class QualityError(DomainError):
    pass


class ReviewError(QualityError):
    pass


class NotAReviewer(ReviewError):
    pass


class NoReviewsLeft(ReviewError):
    pass


class OwnWork(ReviewError):
    pass


class ReviewNotFound(ReviewError):
    pass


class ReviewClaimExpired(ReviewError):
    pass


class InvalidReview(ReviewError):
    pass


class SubmissionNotFound(QualityError):
    pass


class AppealError(QualityError):
    pass


class AlreadyAppealed(AppealError):
    pass


class OverrideError(QualityError):
    pass
