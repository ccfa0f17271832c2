"""The append-only ledger of points, XP, tokens, stake and partner tokens, and cached balances."""
