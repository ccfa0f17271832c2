"""The arena's pages over HTTP: page and fragment, refusals with a clear message, the live poll, staff forms."""

from __future__ import annotations

from datetime import timedelta

from tests.arena.conftest import NOW, verified_pack

HX = {"HX-Request": "true"}


def _match_between(app, tmp_path, first, second):
    from sapien.arena import matches

    with app.test_request_context():
        verified_pack(tmp_path)
        match = matches.start_match([first.id, second.id], _now())
        return match.id, list(match.item_ids), dict(match.planted), dict(match.truth)


def _now():
    from sapien.database import utcnow

    return utcnow()


def test_lobby_queue_and_match_pages_work_as_pages_and_fragments(app, tmp_path, make_member):
    alice, bob = make_member("alice"), make_member("bob")
    page = alice.client.get("/arena/")
    assert page.status_code == 200 and "Find an opponent" in page.get_data(as_text=True) and "<html" in page.get_data(as_text=True)
    fragment = alice.client.get("/arena/", headers=HX)
    assert "<html" not in fragment.get_data(as_text=True) and "HX-Request" in fragment.headers["Vary"]
    with app.test_request_context():
        verified_pack(tmp_path)
    assert alice.post("/arena/queue").headers["Location"].endswith("/arena/queue")
    waiting = alice.client.get("/arena/queue", headers=HX)
    assert "Looking for an opponent" in waiting.get_data(as_text=True)
    joined = bob.post("/arena/queue")
    assert "/arena/matches/" in joined.headers["Location"]
    match_url = joined.headers["Location"]
    assert alice.client.get("/arena/queue", headers=HX).headers["HX-Redirect"] == match_url
    body = bob.client.get(match_url).get_data(as_text=True)
    assert "Looks right" in body and "Wrong label!" in body and 'data-testid="timer"' in body


def test_answering_for_another_match_is_forbidden_and_after_the_timer_is_refused(app, tmp_path, make_member):
    alice, bob, eve = make_member("alice"), make_member("bob"), make_member("eve")
    match_id, item_ids, _planted, _truth = _match_between(app, tmp_path, alice, bob)
    refused = eve.post(f"/arena/matches/{match_id}/answer", {"item_id": item_ids[0], "verdict": "ok"})
    assert refused.status_code == 403
    assert eve.client.get(f"/arena/matches/{match_id}").status_code == 403
    assert eve.client.get(f"/arena/matches/{match_id}/live", headers=HX).status_code == 404
    bad = alice.post(f"/arena/matches/{match_id}/answer", {"item_id": "x", "verdict": "maybe"})
    assert bad.status_code == 422 and "Choose whether the label looks right" in bad.get_data(as_text=True)
    unknown = alice.post(f"/arena/matches/{match_id}/answer", {"item_id": 999999, "verdict": "ok"})
    assert unknown.status_code == 422 and "not in this match" in unknown.get_data(as_text=True)
    assert alice.post(f"/arena/matches/{match_id}/answer", {"item_id": item_ids[0], "verdict": "ok"}).status_code == 303
    with app.test_request_context():
        from sqlalchemy import update

        from sapien.arena.models import ArenaMatch
        from sapien.database import unit_of_work

        with unit_of_work() as session:  # the timer runs out
            session.execute(update(ArenaMatch).where(ArenaMatch.id == match_id).values(deadline=NOW, started_at=NOW - timedelta(minutes=2)))
    late = alice.post(f"/arena/matches/{match_id}/answer", {"item_id": item_ids[1], "verdict": "ok"})
    assert late.status_code == 422 and ("Time is up" in late.get_data(as_text=True) or "over" in late.get_data(as_text=True))


def test_the_live_poll_shows_progress_and_sends_players_to_the_results(app, tmp_path, make_member, config):
    config(ARENA_MIN_MS_PER_ITEM=0)  # the test client answers faster than anyone reads
    alice, bob = make_member("alice"), make_member("bob")
    match_id, item_ids, planted, truth = _match_between(app, tmp_path, alice, bob)
    alice.post(f"/arena/matches/{match_id}/answer", {"item_id": item_ids[0], "verdict": "ok"})
    poll = bob.client.get(f"/arena/matches/{match_id}/live", headers=HX)
    text = poll.get_data(as_text=True)
    assert poll.status_code == 200 and "1/6" in text and "0/6" in text
    for player in (alice, bob):
        for item_id in item_ids:
            key = str(item_id)
            data = {"item_id": item_id, "verdict": "flag", "label": truth[key]} if key in planted and player is alice else {"item_id": item_id, "verdict": "ok"}
            player.post(f"/arena/matches/{match_id}/answer", data)
    assert bob.client.get(f"/arena/matches/{match_id}/live", headers=HX).headers["HX-Redirect"] == f"/arena/matches/{match_id}"
    results = alice.client.get(f"/arena/matches/{match_id}").get_data(as_text=True)
    assert "Victory!" in results and "planted error" in results and "Positive words make it pos." in results
    assert "Defeat" in bob.client.get(f"/arena/matches/{match_id}").get_data(as_text=True)
    history = bob.client.get("/arena/members/alice").get_data(as_text=True)
    assert f"#{match_id}" in history and "Won" in history
    profile = bob.client.get("/u/alice", headers=HX).get_data(as_text=True)
    assert 'id="profile-arena"' in profile and "/arena/members/alice" in profile
    board = bob.client.get("/arena/leaderboard", headers=HX).get_data(as_text=True)
    assert board.index("alice") < board.index("bob")


def test_staff_pages_need_their_roles_and_check_their_input(app, make_member):
    member, moderator, admin = make_member("plain"), make_member("mod", role="moderator"), make_member("boss", role="admin")
    assert member.client.get("/arena/flags").status_code == 403
    assert member.client.get("/arena/admin").status_code == 403
    assert "No flagged matches" in moderator.client.get("/arena/flags").get_data(as_text=True)
    bad = admin.post("/arena/admin/pool", {"budget": "-5", "prize": "1", "entry_fee": "0"})
    assert bad.status_code == 422 and "field--error" in bad.get_data(as_text=True)
    assert admin.post("/arena/admin/pool", {"budget": "50", "prize": "2.5", "entry_fee": "10"}).status_code == 303
    assert "2.5" in member.client.get("/arena/").get_data(as_text=True)
    assert admin.post("/arena/admin/season", {"name": "Spring"}).status_code == 303
    assert "Spring" in member.client.get("/arena/").get_data(as_text=True)


def test_challenging_a_member(app, tmp_path, make_member):
    alice, bob = make_member("alice"), make_member("bob")
    missing = alice.post("/arena/challenges", {"username": "nobody"})
    assert missing.status_code == 422 and "There is no member called nobody" in missing.get_data(as_text=True)
    assert alice.post("/arena/challenges", {"username": "alice"}).status_code == 422
    with app.test_request_context():
        verified_pack(tmp_path)
    assert alice.post("/arena/challenges", {"username": "bob"}).status_code == 303
    lobby = bob.client.get("/arena/").get_data(as_text=True)
    assert "Challenges for you" in lobby
    import re

    challenge_id = re.search(r"/arena/challenges/(\d+)/accept", lobby).group(1)
    accepted = bob.post(f"/arena/challenges/{challenge_id}/accept")
    assert "/arena/matches/" in accepted.headers["Location"]
    again = bob.post(f"/arena/challenges/{challenge_id}/accept")
    assert again.status_code == 303


def test_the_live_poll_reads_at_most_the_signed_in_member_from_the_database(app, tmp_path, make_member):
    """The poll is the arena's hot path (every player, every second): its state comes from Redis."""
    from tests.labeling.test_submit_cost import counted_statements

    alice, bob = make_member("alice"), make_member("bob")
    match_id, _items, _planted, _truth = _match_between(app, tmp_path, alice, bob)
    alice.client.get(f"/arena/matches/{match_id}/live", headers=HX)  # warm: the member's cached pages
    with app.app_context(), counted_statements() as statements:
        response = alice.client.get(f"/arena/matches/{match_id}/live", headers=HX)
    assert response.status_code == 200 and "0/6" in response.get_data(as_text=True)
    # No statement at all: the member comes from the session cache, the strip from Redis, no nav is rendered.
    assert statements == [], "\n".join(statements)


def test_two_members_queue_for_an_accuracy_duel_and_play_it(app, tmp_path, make_member, config):
    from tests.labeling.conftest import make_pack

    config(ARENA_MIN_MS_PER_ITEM=0)
    alice, bob = make_member("alice"), make_member("bob")
    with app.test_request_context():
        make_pack(tmp_path, items=3, gold=6)
    assert "Choose a game" in alice.post("/arena/queue", {"mode": "chess"}, follow_redirects=True).get_data(as_text=True)
    assert alice.post("/arena/queue", {"mode": "accuracy_duel"}).headers["Location"].endswith("/arena/queue")
    assert bob.post("/arena/queue", {"mode": "error_hunt"}).headers["Location"].endswith("/arena/queue")  # another game's queue
    started = bob.post("/arena/queue/leave") and bob.post("/arena/queue", {"mode": "accuracy_duel"})
    match_url = started.headers["Location"]
    page = alice.client.get(match_url).get_data(as_text=True)
    assert "Accuracy duel in" in page and 'name="label" value="neg"' in page
    match_id = int(match_url.rsplit("/", 1)[1])
    with app.test_request_context():
        from sapien.arena import matches

        item_ids, truth = list(matches.get_match(match_id).item_ids), dict(matches.get_match(match_id).truth)
    for item_id in item_ids:
        alice.post(f"/arena/matches/{match_id}/answer", {"item_id": item_id, "verdict": "ok", "label": truth.get(str(item_id), "pos")})
        bob.post(f"/arena/matches/{match_id}/answer", {"item_id": item_id, "verdict": "ok", "label": "neg"})
    results = alice.client.get(match_url).get_data(as_text=True)
    assert "Victory!" in results and "5 right on gold" in results and "a live item" in results
    board = alice.client.get("/arena/leaderboard?mode=accuracy_duel", headers=HX).get_data(as_text=True)
    assert board.index("alice") < board.index("bob")
