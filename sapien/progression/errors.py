"""Progression's domain errors."""

from __future__ import annotations

from sapien.errors import DomainError


class ProgressionError(DomainError):
    pass


class QuestError(ProgressionError):
    pass


class BadgeError(ProgressionError):
    pass
