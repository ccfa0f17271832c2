"""The organization dashboard: only its members see it; keys (secret shown once), webhooks and their log."""

from __future__ import annotations

import re

from tests.api.conftest import CAMPAIGN, ApiClient, make_org

SECRET = re.compile(r'<code class="secret" id="new-secret">([^<]+)</code>')


def test_members_see_campaigns_keys_and_webhooks(app, make_member):
    from sapien.api import keys, orgs, webhooks
    from sapien.database import utcnow

    owner = make_member("olivia")
    outsider = make_member("oscar")
    with app.test_request_context():
        org = make_org("Initech")
        orgs.add_member(org.id, "olivia", role="owner", now=utcnow())
    api = ApiClient(app.test_client(), org.write_key)
    api.post("/api/v1/campaigns", CAMPAIGN)
    assert outsider.client.get(f"/org/{org.id}").status_code == 404
    assert "Initech" not in outsider.client.get("/dashboard").get_data(as_text=True)
    home = owner.client.get("/org/", follow_redirects=True)
    page = home.get_data(as_text=True)
    assert home.status_code == 200 and "Support tickets" in page and "Initech" in page
    assert 'href="/org/"' in owner.client.get("/dashboard").get_data(as_text=True)  # the nav links it
    fragment = owner.client.get(f"/org/{org.id}", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True) and "Support tickets" in fragment.get_data(as_text=True)

    created = owner.post(f"/org/{org.id}/keys", {"name": "notebook", "scope": "read"})
    assert created.status_code == 201
    token = SECRET.search(created.get_data(as_text=True)).group(1)
    assert ApiClient(app.test_client(), token).get("/api/v1/me").get_json()["scope"] == "read"
    listing = owner.client.get(f"/org/{org.id}/keys").get_data(as_text=True)
    assert token not in listing and "notebook" in listing
    with app.app_context():
        key_id = next(k.id for k in keys.organization_keys(org.id) if k.name == "notebook")
    rotated = owner.post(f"/org/{org.id}/keys/{key_id}/rotate")
    new_token = SECRET.search(rotated.get_data(as_text=True)).group(1)
    assert ApiClient(app.test_client(), token).get("/api/v1/me").status_code == 401
    assert ApiClient(app.test_client(), new_token).get("/api/v1/me").status_code == 200
    assert owner.post(f"/org/{org.id}/keys", {"name": "", "scope": "read"}).status_code == 422
    assert outsider.post(f"/org/{org.id}/keys", {"name": "sneaky", "scope": "write"}).status_code == 404
    with app.app_context():
        new_id = next(k.id for k in keys.organization_keys(org.id) if k.name == "notebook" and k.revoked_at is None)
    revoked = owner.post(f"/org/{org.id}/keys/{new_id}/revoke")
    assert revoked.status_code == 303
    assert ApiClient(app.test_client(), new_token).get("/api/v1/me").status_code == 401

    hook = owner.post(f"/org/{org.id}/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["item.verified", "campaign.done"]})
    assert hook.status_code == 201 and SECRET.search(hook.get_data(as_text=True)).group(1).startswith("whsec_")
    assert owner.post(f"/org/{org.id}/webhooks", {"url": "not a url", "events": ["item.verified"]}).status_code == 422
    with app.test_request_context():
        [webhook_id] = [w.id for w in webhooks.organization_webhooks(org.id)]
        [delivery_id] = webhooks.raise_event(org.id, "campaign.done", "campaign.done:x", {"campaign_id": 1}, now=utcnow())
    log = owner.client.get(f"/org/{org.id}/webhooks/{webhook_id}").get_data(as_text=True)
    assert "campaign.done" in log and "Pending" in log
    assert owner.post(f"/org/{org.id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver").status_code == 303
    assert outsider.client.get(f"/org/{org.id}/webhooks/{webhook_id}").status_code == 404


def test_owners_add_and_remove_members_in_the_browser_and_the_last_owner_stays(app, make_member):
    from sapien.api import orgs
    from sapien.database import utcnow

    owner = make_member("ophelia")
    newcomer = make_member("nadia")
    make_member("ned")
    with app.test_request_context():
        org = make_org("Hooli")
        orgs.add_member(org.id, "ophelia", role="owner", now=utcnow())
    assert newcomer.client.get(f"/org/{org.id}/members").status_code == 404  # not in it yet: not shown

    added = owner.post(f"/org/{org.id}/members", {"username": "nadia", "role": "member"})
    assert added.status_code == 303
    page = newcomer.client.get(f"/org/{org.id}/members").get_data(as_text=True)
    assert "@nadia" in page and "@ophelia" in page and "Add member" not in page  # a member sees, an owner manages
    assert newcomer.post(f"/org/{org.id}/members", {"username": "ned", "role": "owner"}).status_code == 422
    missing = owner.post(f"/org/{org.id}/members", {"username": "nobody-here", "role": "member"})
    assert missing.status_code == 422 and "There is no member called" in missing.get_data(as_text=True)

    with app.app_context():
        nadia_id = next(user.id for _member, user in orgs.members_of(org.id) if user.username == "nadia")
        ophelia_id = next(user.id for _member, user in orgs.members_of(org.id) if user.username == "ophelia")
    owner.post(f"/org/{org.id}/members/{ophelia_id}/remove")  # the last owner: refused, with the reason
    page = owner.client.get(f"/org/{org.id}/members").get_data(as_text=True)
    assert "@ophelia" in page and "at least one owner" in page
    assert owner.post(f"/org/{org.id}/members/{nadia_id}/remove").status_code == 303
    assert newcomer.client.get(f"/org/{org.id}").status_code == 404
