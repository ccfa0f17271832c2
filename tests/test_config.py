from __future__ import annotations

import pytest

from sapien.config import ConfigError, load_config, normalise_database_url


def test_production_refuses_development_secrets(monkeypatch):
    monkeypatch.setenv("SAPIEN_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError) as error:
        load_config()
    assert "SECRET_KEY" in str(error.value) and "CHAIN_SIGNER_KEY" in str(error.value) and "DATABASE_URL" in str(error.value)


def test_production_starts_with_real_settings(monkeypatch):
    monkeypatch.setenv("SAPIEN_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    monkeypatch.setenv("CHAIN_SIGNER_KEY", "0x" + "11" * 32)
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/sapien")
    config = load_config()
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/sapien"
    assert config["SESSION_COOKIE_SECURE"] is True


def test_development_defaults_to_a_sqlite_file_in_instance(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SAPIEN_INSTANCE_DIR", str(tmp_path))
    assert load_config()["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/sapien.db"


def test_database_url_normalisation():
    assert normalise_database_url("postgresql://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"
