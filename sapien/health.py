"""`GET /healthz`: is every part the site depends on up? (Details only for signed-in moderators.)"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user
from sqlalchemy import select, text

from sapien.chain.client import chain_status
from sapien.chain.models import CONTRACT_NAMES, ContractDeployment
from sapien.extensions import db, limiter
from sapien.queue import redis_connection, worker_count

bp = Blueprint("health", __name__)


def check_database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        return {"ok": True, "dialect": db.engine.dialect.name}
    except Exception as error:  # noqa: BLE001
        db.session.rollback()
        return {"ok": False, "error": type(error).__name__}


def check_redis() -> dict:
    try:
        redis_connection().ping()
        return {"ok": True}
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": type(error).__name__}


def check_workers() -> dict:
    try:
        count = worker_count()
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": type(error).__name__}
    return {"ok": count > 0, "count": count, **({} if count else {"error": "no worker is running"})}


def check_chain() -> dict:
    status = chain_status()
    if status.ok:
        return {"ok": True, "chain_id": status.chain_id, "block_number": status.block_number, "contracts": recorded_contracts(status.chain_id)}
    return {"ok": False, "error": status.error}


def recorded_contracts(chain_id: int) -> dict[str, str | None]:
    """Our contracts' addresses on the chain (None: not deployed there; `flask chain deploy`)."""
    try:
        rows = dict(db.session.execute(select(ContractDeployment.name, ContractDeployment.address).where(ContractDeployment.chain_id == chain_id)).all())
    except Exception:  # noqa: BLE001 - the database part reports the database
        db.session.rollback()
        rows = {}
    return {name: rows.get(name) for name in CONTRACT_NAMES}


@bp.get("/healthz")
@limiter.exempt
def healthz():
    parts = {
        "database": check_database(),
        "redis": check_redis(),
        "workers": check_workers(),
        "chain": check_chain(),
    }
    failing = sorted(name for name, part in parts.items() if not part["ok"])
    if not (current_user.is_authenticated and current_user.has_role("moderator")):
        # The public (a load balancer) learns what is up or down; the database type, the chain's block and
        # the error names are for signed-in moderators.
        parts = {name: {"ok": part["ok"]} for name, part in parts.items()}
    body = {"status": "ok" if not failing else "degraded", "failing": failing, **parts}
    return jsonify(body), (200 if not failing else 503)
