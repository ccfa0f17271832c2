"""The catalogue of cross-area events.

Every signal is declared here; `sapien.listeners` connects every listener, so the two files answer
"what happens when …?". Senders pass ids and values, never ORM objects, so listeners can run in another
transaction or a job. Most events are sent after the sender's commit (`database.after_commit`); the
ones marked *in the transaction* run inside the sender's unit of work and may still roll back with it.
"""

from __future__ import annotations

from blinker import NamedSignal, Namespace

signals = Namespace()

# accounts
user_signed_up = signals.signal("user-signed-up")  # user_id, now
# Profile settings saved; hide_from_boards tells boards whether to show the member.
profile_updated = signals.signal("profile-updated")  # user_id, hide_from_boards, visibility_changed, timezone, now

# ledger
ledger_entry_posted = signals.signal("ledger-entry-posted")  # user_id, currency, amount, kind, entry_id, balance_after, now

# labeling and quality
# Rewards are paid for verified work only (labeling/settlement.py). Labeling rewards use ledger kind
# "labeling:<task_type>".
# A settlement batch paid verified answers (right gold answers among them): one event per batch, one payout
# per member in it.
answers_paid = signals.signal("answers-paid")  # payouts [{user_id, answers, task_types {task_type: count}, answered_at [datetime], points, xp}], now
# In the transaction: a non-gold submission was accepted (and flagged as awaiting its item's decision);
# quality queues its decision job, which updates the item's online aggregate and verifies its answers.
submission_settled = signals.signal("submission-settled")  # submission_id, now
gold_answered = signals.signal("gold-answered")  # user_id, item_id, pack_id, task_type, correct, now
review_completed = signals.signal("review-completed")  # reviewer_id, submission_id, author_id, outcome, now
item_verified = signals.signal("item-verified")  # item_id, pack_id, task_type, contributor_ids, confidence, now

# guilds
guild_joined = signals.signal("guild-joined")  # user_id, guild_id, now
guild_left = signals.signal("guild-left")  # user_id, guild_id, now

# arena (sent after the commit)
# A match was scored: every human seat's user id, the winner (None for a draw), whether it was rated
# (a flagged match is not until a moderator clears it) and whether it was a guild clash (guild boards).
# `winner_ids` are the human members who won (the winning side's three in a guild clash, none for a draw).
match_finished = signals.signal("match-finished")  # match_id, mode, user_ids, winner_id, winner_ids, rated, guild_clash, now
# A member reached an arena rank tier above any they held this season (progression awards its badge).
arena_tier_reached = signals.signal("arena-tier-reached")  # user_id, tier, season_id, now

# progression
level_reached = signals.signal("level-reached")  # user_id, level, now
badge_awarded = signals.signal("badge-awarded")  # user_id, badge_slug, award_id, now
# In the transaction: a moderator revoked an award; the chain burns its token if one was minted.
badge_revoked = signals.signal("badge-revoked")  # user_id, badge_slug, award_id, now
quest_completed = signals.signal("quest-completed")  # user_id, quest_id, now
streak_extended = signals.signal("streak-extended")  # user_id, days (the streak after today's answer), now
# A member's quest progress moved (or a reward was claimed): quest lists on their page refetch.
quests_moved = signals.signal("quests-moved")  # user_id

# chain
# In the transaction: a member's linked wallet changed to another one or was unlinked (address None);
# accounts signs out their other sessions. A first link (previous_address None) is not sent.
wallet_changed = signals.signal("wallet-changed")  # user_id, address, previous_address, now
# In the transaction: a moderator sent a failed outbox transaction again (chain console); its owner (the
# badge mint) takes it up again.
chain_transaction_retried = signals.signal("chain-transaction-retried")  # tx_id, kind, now

# notifications
notification_added = signals.signal("notification-added")  # user_id


class Question(NamedSignal):
    """A signal a lower area sends to ask a higher one something without importing it.

    `sapien.listeners` connects exactly one receiver, whose return value is the answer. It is asked
    inside the asker's transaction.
    """

    def ask(self, **kwargs):
        answers = [value for _receiver, value in self.send(None, **kwargs)]
        if len(answers) != 1:
            raise RuntimeError(f"{self.name}: {len(answers)} answers (is sapien.listeners connected?)")
        return answers[0]


# labeling asks quality
# A fresh submission's first status: quality's Judgement(status, feedback, reason) (gold check, review sampling).
judge_submission = Question("judge-submission")  # submission (added, not flushed yet), now -> Judgement
# The mapped class, keyed by `user_id`, whose row of the answering member the judge reads (quality's reputation):
# labeling loads it with the answered lease, so the judge finds it in the session instead of querying.
judged_member_row = Question("judged-member-row")  # -> a mapped class with a user_id key
# The verified labels of these items, where they have one: {item_id: answer} (a member's history).
verified_labels = Question("verified-labels")  # item_ids -> dict[int, dict]
# A member's reputation, 0–1000 (pack and guild requirements).
reputation_of = Question("reputation-of")  # user_id -> int
# The reward multiplier of a task type at a difficulty, in basis points (10,000 = 1×): economy's parameter store.
reward_rate = Question("reward-rate")  # task_type, difficulty -> int
# labeling asks economy: the stake multipliers (basis points) of these members, only those above 1× (settlement).
stake_multipliers = Question("stake-multipliers")  # user_ids -> dict[int, int]
# labeling asks economy: one setting's current value (the priority reserve of scarce packs).
economy_parameter = Question("economy-parameter")  # name -> object
# guilds asks progression
level_of = Question("level-of")  # user_id -> int (from the member's XP)
# chain asks the wallets area (accounts/SIWE): the address a member linked, if any.
wallet_of = Question("wallet-of")  # user_id -> str | None
