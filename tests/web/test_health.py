"""GET /healthz names every part and says which one is down."""

from __future__ import annotations

from sapien.queue import Heartbeat


def test_healthz_is_503_and_names_the_workers_when_none_runs(make_member):
    response = make_member(role="moderator").client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["workers"]
    assert body["database"]["ok"] and body["redis"]["ok"] and body["chain"]["ok"]
    assert body["chain"]["chain_id"] == 31337


def test_healthz_is_200_when_everything_is_up(app, client):
    pulse = Heartbeat(app.config["REDIS_URL"], "test-worker")  # one beat of a worker (tests/faults/ runs real ones)
    pulse.beat()
    try:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.get_json()["status"] == "ok"
    finally:
        pulse.stop()


def test_healthz_names_a_dead_chain_and_redis(make_app):
    app = make_app(CHAIN_RPC_URL="http://127.0.0.1:9", REDIS_URL="redis://127.0.0.1:9/0", RATELIMIT_ENABLED=False)
    body = app.test_client().get("/healthz").get_json()
    assert {"chain", "redis", "workers"} <= set(body["failing"])
    assert "database" not in body["failing"]


def test_healthz_keeps_its_details_for_signed_in_moderators(app, client, make_member):
    public = client.get("/healthz").get_json()
    assert public["failing"] == ["workers"]
    assert public["database"] == {"ok": True} and public["chain"] == {"ok": True} and public["workers"] == {"ok": False}
    assert "postgresql" not in str(public) and "block_number" not in str(public)
    member = make_member().client.get("/healthz").get_json()
    assert member["chain"] == {"ok": True}
    details = make_member(role="moderator").client.get("/healthz").get_json()
    assert details["database"]["dialect"] == "postgresql"
    assert isinstance(details["chain"]["block_number"], int)
