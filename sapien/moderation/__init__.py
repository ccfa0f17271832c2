"""Fraud flags, bans, the audit log, and the operations pages moderators use."""
