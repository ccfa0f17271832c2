"""The base of every area's domain errors: a translatable message and, optionally, the form field."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return str(self.message)
