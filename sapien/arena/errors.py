"""The arena's domain errors: each carries the message a member reads."""

from __future__ import annotations

from sapien.errors import DomainError


class ArenaError(DomainError):
    pass


class NotAPlayer(ArenaError):
    """The member holds no seat in this match (answering for the other player lands here): a 403."""


class MatchNotFound(ArenaError):
    pass


class TimeUp(ArenaError):
    pass


class MatchOver(ArenaError):
    pass


class AlreadyInMatch(ArenaError):
    pass


class NotEnoughItems(ArenaError):
    pass


class NoGhost(ArenaError):
    pass
