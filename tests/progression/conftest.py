import pytest


@pytest.fixture
def ctx(app):
    """An app context with a (signed-out) request context, so translated messages can be read."""
    with app.test_request_context():
        yield app
