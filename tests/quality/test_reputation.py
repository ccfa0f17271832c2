"""Reputation moves up and down with quality signals, decays toward 500 when idle, and shows its history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.quality.conftest import NOW, answer, items_of, label, make_pack, make_user


def test_gold_moves_reputation_up_and_down(ctx, tmp_path):
    from sapien.quality import reputation

    pack = make_pack(tmp_path, items=0, gold=6)
    good, bad = make_user(), make_user()
    for item in items_of(pack.id, gold=True):
        answer(good, item.id, label("pos"))
        answer(bad, item.id, label("neg"))
    assert reputation.reputation_of(good) > 600
    assert reputation.reputation_of(bad) < 400
    history = reputation.reputation_history(good)
    assert [e.reason for e in history] == ["gold"] * 6
    assert history[0].score_after == reputation.reputation_of(good)


def test_decay_drifts_idle_members_toward_the_mean_once_a_week(ctx):
    from sapien.extensions import db
    from sapien.quality import reputation
    from sapien.quality.models import Reputation

    high, low, active = make_user(), make_user(), make_user()
    for n in range(10):
        reputation.record_reputation(high, key=f"h{n}", reason="gold", good=True, now=NOW)
        reputation.record_reputation(low, key=f"l{n}", reason="gold", good=False, now=NOW)
    before_high, before_low = reputation.reputation_of(high), reputation.reputation_of(low)
    reputation.record_reputation(active, key="a", reason="gold", good=True, now=NOW + timedelta(days=40))
    later = NOW + timedelta(days=45)
    assert reputation.decay_reputation(later) == 2
    assert 500 < reputation.reputation_of(high) < before_high
    assert before_low < reputation.reputation_of(low) < 500
    assert reputation.reputation_of(active) == 520
    assert reputation.decay_reputation(later + timedelta(hours=1)) == 0  # same ISO week: nothing more
    assert reputation.decay_reputation(later + timedelta(days=7)) == 2  # decay is not activity: it continues
    assert db.session.get(Reputation, high).updated_at is not None
    assert reputation.reputation_history(high)[0].reason == "decay"


def test_decay_job_runs_twice_safely(ctx):
    """The job decays real, idle reputations once; run again the same week it changes nothing."""
    from jobs.quality import decay_reputation
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.quality import reputation
    from sapien.quality.models import ReputationEvent

    idle_since = utcnow() - timedelta(days=60)  # past REPUTATION_DECAY_AFTER_DAYS (30)
    high, low, fresh = make_user(), make_user(), make_user()
    for n in range(5):
        reputation.record_reputation(high, key=f"h{n}", reason="gold", good=True, now=idle_since)
        reputation.record_reputation(low, key=f"l{n}", reason="gold", good=False, now=idle_since)
    reputation.record_reputation(fresh, key="f", reason="gold", good=True, now=utcnow())

    def state():
        db.session.expire_all()
        events = db.session.scalar(select(func.count()).select_from(ReputationEvent))
        return [reputation.reputation_of(user) for user in (high, low, fresh)], events

    (high_before, low_before, fresh_before), events_before = state()
    assert high_before > 500 > low_before

    assert decay_reputation() == 2
    after_first = state()
    (high_after, low_after, fresh_after), events_after = after_first
    assert 500 < high_after < high_before and low_before < low_after < 500
    assert fresh_after == fresh_before and events_after == events_before + 2

    assert decay_reputation() == 0
    assert state() == after_first


def test_reputation_chart_points():
    from types import SimpleNamespace

    from sapien.quality.reputation import reputation_chart

    assert reputation_chart([]) is None
    events = [SimpleNamespace(score_after=520, delta=20), SimpleNamespace(score_after=499, delta=-21)]
    chart = reputation_chart(events, width=100, height=100)
    assert chart.points == "0.0,50.0 50.0,48.0 100.0,50.1"
    assert (chart.first, chart.last, chart.low, chart.high) == (500, 499, 499, 520)


def test_a_move_starts_from_the_score_another_transaction_committed_after_the_row_was_read(ctx):
    """An answer reads its member's reputation row early (with the answered lease, for the judge); a move made
    later in that transaction must start from the score as it is once locked, not from the early copy."""
    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.quality import reputation
    from sapien.quality.models import Reputation

    ana = make_user()
    reputation.record_reputation(ana, key="first", reason="gold", good=True, now=NOW)
    db.session.commit()
    with unit_of_work() as session:
        copy = session.scalar(select(Reputation).where(Reputation.user_id == ana))  # this transaction's copy, held
        early = copy.score
        with db.engine.connect() as other:  # another transaction moves the score meanwhile, and commits
            other.execute(Reputation.__table__.update().where(Reputation.user_id == ana).values(score=early + 100))
            other.commit()
        delta = reputation.apply_reputation(ana, "second", "gold", NOW, delta=-10)
    db.session.expire_all()
    assert copy.score == early + 90
    assert delta == -10 and reputation.reputation_of(ana) == early + 90
