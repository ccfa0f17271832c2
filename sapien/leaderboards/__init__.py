"""Leaderboards: Redis sorted sets rebuilt from the ledger; "around me"; season freezes."""
