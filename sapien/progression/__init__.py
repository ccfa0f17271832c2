"""XP and levels, streaks, quests, badges, unlocks."""
