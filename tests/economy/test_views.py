"""The economy pages: roles, page and fragment, every form as a plain POST, and bad input in the page."""

from __future__ import annotations

from sqlalchemy import select

from sapien.economy import conversion
from sapien.economy.models import ParameterChange, Slash
from sapien.economy.parameters import get_parameter
from sapien.extensions import db
from sapien.ledger import service as ledger

from .conftest import NOW, make_pack
from .helpers import T, give


def _id_of(app, username: str) -> int:
    from sapien.accounts.models import User

    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))


def test_the_wallet_page_and_fragment_show_balances_tier_and_conversion(app, make_member):
    ana = make_member("ana")
    with app.test_request_context():
        give(_id_of(app, "ana"), "points", 1500)
    page = ana.client.get("/economy/wallet")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in text and "HX-Request" in page.headers["Vary"]
    assert "×1.00" in text and "1,500" in text and "Convert now" in text
    fragment = ana.client.get("/economy/wallet", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and 'id="economy-wallet"' in fragment


def test_a_member_converts_and_stakes_by_plain_posts_and_bad_amounts_stay_in_the_page(app, make_member):
    ana = make_member("ana")
    ana_id = _id_of(app, "ana")
    with app.test_request_context():
        give(ana_id, "points", 5000)
    response = ana.post("/economy/convert")
    assert response.status_code == 303 and response.headers["Location"].endswith("/economy/wallet")
    assert "Converted 5,000 points" in ana.client.get("/economy/wallet").get_data(as_text=True)

    for amount, message in (("-1", "cannot be negative"), ("0.0000001", "at most 6 decimal places"), ("1,5", "Did you mean 15 tokens?"),
                            ("5", "You have 0.4 tokens to stake"), ("abc", "Enter an amount of tokens"), ("0", "above zero")):
        response = ana.post("/economy/stake", {"amount": amount, "lock_months": "1"})
        assert response.status_code == 422 and message in response.get_data(as_text=True), amount
    response = ana.post("/economy/stake", {"amount": "0.25", "lock_months": "1"})
    assert response.status_code == 303
    with app.app_context():
        assert ledger.balance(ana_id, "stake") == T // 10 + T // 4  # the auto-staked fifth and this
    text = ana.client.get("/economy/wallet").get_data(as_text=True)
    assert "×1.05" in text
    # A French reader writes the decimal comma and reads it back.
    french = {"Accept-Language": "fr"}
    response = ana.post("/economy/stake", {"amount": "0,05", "lock_months": "1"}, headers=french)
    assert response.status_code == 303
    with app.app_context():
        assert ledger.balance(ana_id, "stake") == T // 10 + T // 4 + T // 20
    assert "0,05" in ana.client.get("/economy/wallet", headers=french).get_data(as_text=True)


def test_pages_check_roles(app, make_member):
    member = make_member("member1")
    moderator = make_member("mod1", role="moderator")
    assert member.client.get("/economy/admin").status_code == 403
    assert member.client.get("/economy/moderation").status_code == 403
    assert moderator.client.get("/economy/admin").status_code == 403
    assert moderator.client.get("/economy/moderation").status_code == 200
    assert member.post("/economy/moderation/slash", {"username": "mod1", "severity": "severe", "reason": "x"}).status_code == 403
    assert member.post("/economy/admin/parameters", {"name": "conversion.epoch_days", "value": "1", "reason": "x"}).status_code == 403


def test_an_admin_changes_a_setting_with_a_reason_and_sees_its_history(app, make_member):
    admin = make_member("boss", role="admin")
    response = admin.post("/economy/admin/parameters", {"name": "revenue.split", "value": '{"contributors": 5000, "stakers": 2000, "treasury": 2000}',
                                                        "reason": "Rebalance"})
    assert response.status_code == 422 and "must add up to 100 %" in response.get_data(as_text=True)
    response = admin.post("/economy/admin/parameters", {"name": "conversion.epoch_days", "value": "14", "reason": ""})
    assert response.status_code == 422 and "Say why" in response.get_data(as_text=True)
    response = admin.post("/economy/admin/parameters", {"name": "conversion.epoch_days", "value": "14", "reason": "Fortnightly"})
    assert response.status_code == 303
    with app.app_context():
        assert get_parameter("conversion.epoch_days") == 14
        change = db.session.scalar(select(ParameterChange))
        assert (change.old_value, change.new_value, change.reason) == (7, 14, "Fortnightly")
    text = admin.client.get("/economy/admin").get_data(as_text=True)
    assert "Fortnightly" in text and "boss" in text


def test_an_admin_records_a_payment_once(app, make_member, tmp_path):
    admin = make_member("boss", role="admin")
    with app.test_request_context():
        campaign_id = make_pack(tmp_path, items=1).campaign_id
    data = {"campaign_id": str(campaign_id), "amount": "0.5", "external_ref": "INV-77"}
    assert admin.post("/economy/admin/payments", data).status_code == 303
    assert admin.post("/economy/admin/payments", data).status_code == 303
    assert "recorded before" in admin.client.get("/economy/admin").get_data(as_text=True)
    bad = admin.post("/economy/admin/payments", {**data, "amount": "-3"})
    assert bad.status_code == 422 and "cannot be negative" in bad.get_data(as_text=True)
    text = admin.client.get("/economy/admin").get_data(as_text=True)
    assert text.count("INV-77") == 1 and "0.5" in text


def test_a_moderator_slashes_with_a_reason_and_the_member_sees_it(app, make_member):
    moderator = make_member("mod1", role="moderator")
    ana = make_member("ana")
    ana_id = _id_of(app, "ana")
    with app.test_request_context():
        give(ana_id, "points", 5000)
        conversion.convert_member(ana_id, now=NOW)
    response = moderator.post("/economy/moderation/slash", {"username": "ana", "severity": "severe", "reason": ""})
    assert response.status_code == 422 and "needs a reason" in response.get_data(as_text=True)
    response = moderator.post("/economy/moderation/slash", {"username": "nobody", "severity": "severe", "reason": "Fraud"})
    assert response.status_code == 422 and "no member with that username" in response.get_data(as_text=True)
    assert moderator.post("/economy/moderation/slash", {"username": "ana", "severity": "severe", "reason": "Bot farm"}).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Slash.amount)) == T // 10 and ledger.balance(ana_id, "stake") == 0
    assert "Bot farm" in ana.client.get("/economy/wallet").get_data(as_text=True)
