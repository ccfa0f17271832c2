"""Fixtures for economy tests: members, packs and the clock come from the labeling tests' helpers."""

from __future__ import annotations

import pytest

from tests.labeling.conftest import NOW, make_pack, make_user, open_pack  # noqa: F401


@pytest.fixture
def ctx(app):
    """An app context with a (signed-out) request context, so translated messages can be read."""
    with app.test_request_context():
        yield app
