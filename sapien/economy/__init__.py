"""The economy: the parameter store, points-to-tokens conversion, staking, revenue share (docs/economy.md)."""
