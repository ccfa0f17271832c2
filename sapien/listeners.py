"""Who listens to what: every receiver of the signals in `sapien.events`, connected in one place.

Only `create_app` imports this module (it sits above every area), and `connect` is safe to call again:
blinker ignores a second connect of the same receiver, and the questions keep their one answer.
"""

from __future__ import annotations

from sapien import events, member_cache
from sapien.accounts import service as accounts

# The modules that register pending work for the reconciler (`queue.pending_work_source`) are imported
# here so a worker always knows every source.
from sapien.airdrops import claims as _airdrop_claims  # noqa: F401, E402, I001
from sapien.airdrops import snapshots as _airdrop_snapshots  # noqa: F401, E402, I001
from sapien.api import deadlines as _api_deadlines  # noqa: F401, E402, I001
from sapien.api import idempotency as _api_idempotency  # noqa: F401, E402, I001
from sapien.api import webhooks
from sapien.arena import sweep as _arena_sweep  # noqa: F401, E402, I001
from sapien.chain import pending as _chain_pending  # noqa: F401, E402, I001
from sapien.chain import wallets
from sapien.economy import conversion as _conversion  # noqa: F401, E402, I001
from sapien.economy import parameters, staking
from sapien.governance import pending as _governance_pending  # noqa: F401, E402, I001
from sapien.labeling import leases as _leases  # noqa: F401, E402, I001
from sapien.labeling import settlement as _settlement  # noqa: F401, E402, I001
from sapien.leaderboards import rebuild as _rebuild  # noqa: F401, E402, I001
from sapien.leaderboards import recording
from sapien.moderation import signals as _trust_signals  # noqa: F401, E402, I001
from sapien.moderation.safety import scan as _trust_scan  # noqa: F401, E402, I001
from sapien.progression import levels, live, mint_queue, minting, reactions, streaks
from sapien.progression import pending as _pending  # noqa: F401, E402, I001
from sapien.quality import aggregation_queue as _aggregation_queue  # noqa: F401, E402, I001
from sapien.quality import batch as _batch  # noqa: F401, E402, I001
from sapien.quality import decisions, judging, online, reputation
from sapien.quality import escalation as _escalation  # noqa: F401, E402, I001
from sapien.quality.models import Reputation

# Events the member cache does not follow: they change nothing a cached page shows (the bell polls).
NOT_CACHED = (events.submission_settled, events.quests_moved, events.notification_added, events.streak_extended)


def _judge_submission(_sender=None, *, submission, now):
    return judging.judge_submission(submission, now=now)


def _judged_member_row(_sender=None):
    return Reputation


def _verified_labels(_sender=None, *, item_ids) -> dict[int, dict]:
    return online.verified_labels(item_ids)


def _reputation_of(_sender=None, *, user_id: int) -> int:
    return reputation.reputation_of(user_id)


def _reward_rate(_sender=None, *, task_type: str, difficulty: str) -> int:
    return parameters.reward_rate_bp(task_type, difficulty)


def _stake_multipliers(_sender=None, *, user_ids) -> dict[int, int]:
    return staking.stake_multipliers(list(user_ids))


def _economy_parameter(_sender=None, *, name: str):
    return parameters.get_parameter(name)


def _level_of(_sender=None, *, user_id: int) -> int:
    return levels.member_level(user_id)


def _revoke_sessions_on_wallet_change(_sender=None, *, user_id: int, **_payload) -> None:
    # A new or removed wallet is a credential change: other devices sign in again (as after a new password).
    accounts.revoke_sessions(user_id)


def _wallet_of(_sender=None, *, user_id: int) -> str | None:
    return wallets.wallet_of(user_id)


def connect() -> None:
    """Wire every listener and answer every question. Called once by `create_app`."""
    # labeling asks quality and progression (they sit above it)
    events.judge_submission.connect(_judge_submission, weak=False)
    events.judged_member_row.connect(_judged_member_row, weak=False)
    events.reputation_of.connect(_reputation_of, weak=False)
    events.verified_labels.connect(_verified_labels, weak=False)
    events.level_of.connect(_level_of, weak=False)
    # labeling asks economy (its reward rates are economy's settings)
    events.reward_rate.connect(_reward_rate, weak=False)
    events.stake_multipliers.connect(_stake_multipliers, weak=False)
    events.economy_parameter.connect(_economy_parameter, weak=False)
    # chain and progression ask the wallets area
    events.wallet_of.connect(_wallet_of, weak=False)
    events.submission_settled.connect(decisions.on_submission_settled, weak=False)

    # accounts
    events.wallet_changed.connect(_revoke_sessions_on_wallet_change, weak=False)

    # progression
    events.ledger_entry_posted.connect(reactions.on_ledger_entry_posted, weak=False)
    events.answers_paid.connect(reactions.on_answers_paid, weak=False)
    events.gold_answered.connect(reactions.on_gold_answered, weak=False)
    events.review_completed.connect(reactions.on_review_completed, weak=False)
    events.guild_joined.connect(reactions.on_guild_joined, weak=False)
    events.arena_tier_reached.connect(reactions.on_arena_tier_reached, weak=False)
    events.match_finished.connect(reactions.on_match_finished, weak=False)
    events.profile_updated.connect(streaks.on_profile_updated, weak=False)
    events.badge_awarded.connect(mint_queue.on_badge_awarded, weak=False)
    events.chain_transaction_retried.connect(mint_queue.on_transaction_retried, weak=False)
    events.badge_revoked.connect(minting.on_badge_revoked, weak=False)

    # api: client webhooks (item.verified, then campaign.done and budget.low)
    events.item_verified.connect(webhooks.on_item_verified, weak=False)

    # leaderboards
    events.ledger_entry_posted.connect(recording.on_ledger_entry_posted, weak=False)
    events.gold_answered.connect(recording.on_gold_answered, weak=False)
    events.guild_joined.connect(recording.on_guild_joined, weak=False)
    events.guild_left.connect(recording.on_guild_left, weak=False)
    events.profile_updated.connect(recording.on_profile_updated, weak=False)

    # the web layer: live updates in the request that caused them, after the commit
    events.ledger_entry_posted.connect(live.on_ledger_entry_posted, weak=False)
    events.level_reached.connect(live.on_level_reached, weak=False)
    events.quests_moved.connect(live.on_quests_moved, weak=False)
    events.notification_added.connect(live.on_notification_added, weak=False)
    events.badge_awarded.connect(live.on_badge_awarded, weak=False)
    events.quest_completed.connect(live.on_quest_completed, weak=False)
    events.streak_extended.connect(live.on_streak_extended, weak=False)

    # An event about a member makes their cached pages (the dashboard) stale once it commits.
    for signal in events.signals.values():
        if signal not in NOT_CACHED:
            signal.connect(member_cache.on_member_event, weak=False)
