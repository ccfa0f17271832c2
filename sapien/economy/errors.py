"""The economy's domain errors: each carries a translatable message for the page."""

from __future__ import annotations

from sapien.errors import DomainError


class EconomyError(DomainError):
    pass


class EconomyNotFound(EconomyError):
    pass
