"""Governance's settings (voting period, quorum, threshold, timelock, who may propose) are parameters of
the economy's store, declared there with their defaults, so they have a history and can be changed by a vote
like any other."""

from __future__ import annotations

from sapien.economy import parameters as store


def setting(name: str) -> int:
    return int(store.get_parameter(name))
