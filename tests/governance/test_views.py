"""Governance pages: public lists and proposals, page or fragment, the proposal form's errors, the ballot,
and who may execute, cancel and mark done."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.governance.conftest import HOUR, TOKEN, give, rate_draft

HX = {"HX-Request": "true"}


def _open_proposal(app, author_id: int, **draft_changes):
    from sapien.database import utcnow
    from sapien.governance import proposals

    with app.test_request_context():
        return proposals.create_proposal(author_id, rate_draft(**draft_changes), utcnow()).id


def test_lists_and_proposals_are_public_pages_and_fragments(app, make_member, client):
    ana = make_member("ana")
    with app.app_context():
        give(ana.id, xp=300, stake=2 * TOKEN, reputation=600)
    proposal_id = _open_proposal(app, ana.id)

    page = client.get("/governance/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and "Double the reward rate" in body and "HX-Request" in page.headers["Vary"]
    fragment = client.get("/governance/?state=failed", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and "No proposal has failed." in fragment
    assert client.get("/governance/?state=nonsense").status_code == 200

    shown = client.get(f"/governance/{proposal_id}").get_data(as_text=True)
    assert "reward.rate.text_classification" in shown and "Live tally" in shown and "Sign in to vote." in shown
    tally = client.get(f"/governance/{proposal_id}/tally", headers=HX)
    assert tally.status_code == 200 and 'id="tally"' in tally.get_data(as_text=True) and "<html" not in tally.get_data(as_text=True)
    assert "<html" in client.get(f"/governance/{proposal_id}/tally").get_data(as_text=True)
    assert client.get("/governance/999999").status_code == 404
    assert client.get("/governance/new").status_code in (302, 303)  # proposing needs an account


def test_the_proposal_form_shows_what_is_missing_and_every_bad_value_in_the_page(app, make_member):
    ana = make_member("ana")
    form = ana.client.get("/governance/new").get_data(as_text=True)
    assert "You cannot propose yet" in form and "Reach level 3" in form
    refused = ana.post("/governance/new", {"kind": "parameter", "title": "More", "parameter_name": "reward.rate.text_classification", "new_value": "2"})
    assert refused.status_code == 422 and "You cannot propose yet" in refused.get_data(as_text=True)

    with app.app_context():
        give(ana.id, xp=300, stake=2 * TOKEN, reputation=600)
    cases = [
        ({"parameter_name": "reward.rate.text_classification", "new_value": "lots"}, "Enter a whole number."),
        ({"parameter_name": "reward.rate.text_classification", "new_value": "-1"}, "Enter a whole number from 0"),
        ({"parameter_name": "revenue.split", "new_value": "{not json"}, "Enter valid JSON."),
        ({"parameter_name": "", "new_value": "1"}, "Choose a setting from the list."),
        ({"parameter_name": "no.such", "new_value": "1"}, "Choose an option from the list."),
        ({"parameter_name": "reward.rate.text_classification", "new_value": ""}, "Enter the value you propose."),
    ]
    for fields, message in cases:
        response = ana.post("/governance/new", {"kind": "parameter", "title": "A change", **fields})
        assert response.status_code == 422 and message in response.get_data(as_text=True), (fields, message)
    no_title = ana.post("/governance/new", {"kind": "task_type", "title": "", "task_type_name": "video"})
    assert no_title.status_code == 422 and "Give the proposal a title." in no_title.get_data(as_text=True)

    made = ana.post("/governance/new", {"kind": "parameter", "title": "Pay more", "parameter_name": "reward.rate.text_classification",
                                        "new_value": "12500", "rationale": "Because."})
    assert made.status_code == 303
    shown = ana.client.get(made.headers["Location"]).get_data(as_text=True)
    assert "Your proposal is open for voting." in shown and "12500" in shown


def test_voting_from_the_page_and_its_refusals(app, make_member):
    ana, bob, cat = make_member("ana"), make_member("bob"), make_member("cat")
    with app.app_context():
        give(ana.id, xp=300, stake=2 * TOKEN, reputation=600)
    proposal_id = _open_proposal(app, ana.id)
    with app.app_context():
        give(cat.id, stake=TOKEN)  # staked after the opening

    voted = ana.post(f"/governance/{proposal_id}/vote", {"choice": "for"})
    assert voted.status_code == 303
    page = ana.client.get(f"/governance/{proposal_id}").get_data(as_text=True)
    assert "Your vote is counted." in page and "You voted: For." in page
    assert re.search(r'id="tally-for".*?2,200', page, re.S)

    bad = ana.post(f"/governance/{proposal_id}/vote", {"choice": "maybe"})
    assert bad.status_code == 422 and "Choose an option from the list." in bad.get_data(as_text=True)
    late = cat.post(f"/governance/{proposal_id}/vote", {"choice": "against"})
    assert late.status_code == 422 and "no voting power when this proposal opened" in late.get_data(as_text=True)
    none = bob.post(f"/governance/{proposal_id}/vote", {"choice": "against"})
    assert none.status_code == 422
    no_csrf = bob.client.post(f"/governance/{proposal_id}/vote", data={"choice": "for"})
    assert no_csrf.status_code == 400


def test_moderators_execute_only_after_the_timelock_and_members_cannot(app, make_member):
    from sapien.database import utcnow
    from sapien.governance import proposals, voting

    ana, mod = make_member("ana"), make_member("mod", role="moderator")
    long_ago = utcnow() - timedelta(hours=100)  # closed 28 h ago: the 48 h timelock still runs
    with app.test_request_context():
        give(ana.id, xp=300, stake=2 * TOKEN, reputation=600)
        proposal = proposals.create_proposal(ana.id, rate_draft(), long_ago)
        voting.cast_vote(ana.id, proposal.id, "for", long_ago + HOUR)
        proposals.close_proposal(proposal.id, proposal.closes_at)
        proposal_id = proposal.id
    assert ana.post(f"/governance/{proposal_id}/execute").status_code == 403
    early = mod.post(f"/governance/{proposal_id}/execute")
    assert early.status_code == 422 and "waits out its timelock" in early.get_data(as_text=True)
    assert "Apply from" in early.get_data(as_text=True)  # the page offers the change only once the timelock is over
    cancel = ana.post(f"/governance/{proposal_id}/cancel", {"reason": "changed my mind"})
    assert cancel.status_code == 403  # the vote is over: only moderators may cancel now
    no_reason = mod.post(f"/governance/{proposal_id}/cancel", {"reason": ""})
    assert no_reason.status_code == 422 and "Give a reason" in no_reason.get_data(as_text=True)
    assert mod.post(f"/governance/{proposal_id}/cancel", {"reason": "Superseded"}).status_code == 303
    assert "Superseded" in mod.client.get(f"/governance/{proposal_id}").get_data(as_text=True)
