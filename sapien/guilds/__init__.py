"""Guilds: membership rules, roles, applications and invitations, the leader dashboard."""
