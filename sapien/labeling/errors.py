"""Labeling's domain errors."""

from __future__ import annotations

from sapien.errors import DomainError


class LabelingError(DomainError):
    pass


class LabelingNotFound(LabelingError):
    """The object does not exist or belongs to someone else (shown as a 404)."""


class InvalidAnswer(LabelingError):
    pass


class InvalidSettings(LabelingError):
    pass


class NoWorkLeft(LabelingError):
    pass


class PackLocked(LabelingError):
    pass


class DailyCapReached(LabelingError):
    pass


class LeaseExpired(LabelingError):
    pass


class AlreadySubmitted(LabelingError):
    pass


class ExamError(LabelingError):
    pass
