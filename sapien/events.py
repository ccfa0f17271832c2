"""The catalogue of cross-area events.

Every signal is declared here and every listener is connected in `connect_listeners`, so one file
answers "what happens when …?". Senders pass ids and values, never ORM objects, so listeners can run
in another transaction or a job.
"""

from __future__ import annotations

from blinker import Namespace

signals = Namespace()

# accounts
user_signed_up = signals.signal("user-signed-up")  # user_id, now
# Profile settings saved; hide_from_boards tells boards whether to show the member.
profile_updated = signals.signal("profile-updated")  # user_id, hide_from_boards, visibility_changed, timezone, now

# ledger
ledger_entry_posted = signals.signal("ledger-entry-posted")  # user_id, currency, amount, kind, entry_id, balance_after, now

# labeling and quality
# A submission was accepted and paid. Labeling rewards use ledger kind "labeling:<task_type>".
submission_accepted = signals.signal("submission-accepted")  # user_id, submission_id, pack_id, task_type, xp, points, now
gold_answered = signals.signal("gold-answered")  # user_id, item_id, pack_id, task_type, correct, now
review_completed = signals.signal("review-completed")  # reviewer_id, submission_id, author_id, outcome, now
item_verified = signals.signal("item-verified")  # item_id, pack_id, task_type, contributor_ids, confidence, now

# guilds
guild_joined = signals.signal("guild-joined")  # user_id, guild_id, now
guild_left = signals.signal("guild-left")  # user_id, guild_id, now

# progression
level_reached = signals.signal("level-reached")  # user_id, level, now
badge_awarded = signals.signal("badge-awarded")  # user_id, badge_slug, award_id, now
quest_completed = signals.signal("quest-completed")  # user_id, quest_id, now


def connect_listeners() -> None:
    """Wire listeners to signals. Called once by `create_app`; safe to call again."""
    # Areas connect here as they land. blinker ignores a second connect of the same receiver.
    from sapien.progression import service as progression

    ledger_entry_posted.connect(progression.on_ledger_entry_posted, weak=False)
    submission_accepted.connect(progression.on_submission_accepted, weak=False)
    gold_answered.connect(progression.on_gold_answered, weak=False)
    review_completed.connect(progression.on_review_completed, weak=False)
    guild_joined.connect(progression.on_guild_joined, weak=False)
    profile_updated.connect(progression.on_profile_updated, weak=False)

    from sapien.progression import live

    badge_awarded.connect(live.on_badge_awarded, weak=False)  # the badge moment in this request's response

    from sapien.leaderboards import service as leaderboards

    ledger_entry_posted.connect(leaderboards.on_ledger_entry_posted, weak=False)
    gold_answered.connect(leaderboards.on_gold_answered, weak=False)
    guild_joined.connect(leaderboards.on_guild_joined, weak=False)
    guild_left.connect(leaderboards.on_guild_left, weak=False)
    profile_updated.connect(leaderboards.on_profile_updated, weak=False)

    from sapien import member_cache

    # An event about a member makes their cached pages (the dashboard) stale once it commits.
    for signal in list(signals.values()):
        signal.connect(member_cache.on_member_event, weak=False)
