"""Users, roles, sign-up and login, session revocation, profile settings."""
