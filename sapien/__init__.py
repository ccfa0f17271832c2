"""Sapien: a gamified community where AI data labeling is a game that pays for quality."""

from __future__ import annotations

from flask import Flask, flash, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from sapien.config import load_config
from sapien.extensions import csrf, db, htmx, limiter, login_manager, migrate

# The app's parts (areas, blueprints, listeners) are imported inside the functions below, on purpose:
# this package's __init__ runs before any `sapien.*` module loads, so importing them up here would load
# every area for any `import sapien.x` (a job, a CLI helper) and import them into a half-made package.


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(load_config(overrides))
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_KEY_PREFIX", f"{app.config['REDIS_KEY_PREFIX']}:limits")
    # Rate-limit headers cost two extra Redis round trips per request; the 429 page says enough.
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)

    if app.config["TRUSTED_PROXY_COUNT"]:
        # Behind a TLS proxy the client's address and scheme come from its X-Forwarded-* headers; with no
        # proxy configured those headers are anyone's to forge, so they are ignored.
        hops = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    from sapien.request_pipeline import register_request_pipeline

    register_request_pipeline(app)
    _init_login(app)

    from sapien.i18n import init_i18n
    from sapien.web import register_web_shell

    init_i18n(app)
    register_web_shell(app)
    from sapien.member_cache import register_member_cache

    register_member_cache(app)
    from sapien.progression.live import register_live_updates

    register_live_updates(app)
    _register_models()
    _register_blueprints(app)
    _register_template_context(app)

    from sapien import listeners
    from sapien.cli import register_cli
    from sapien.database import (
        configure_sqlite,
        keep_prepared_statements,
        name_postgres_connections,
        ping_idle_connections,
    )

    register_cli(app)
    listeners.connect()
    with app.app_context():
        configure_sqlite(db.engine)
        name_postgres_connections(db.engine, app.config["DATABASE_APPLICATION_NAME"])
        keep_prepared_statements(app, db.engine)
        ping_idle_connections(db.engine)
    return app


def _init_login(app: Flask) -> None:
    from sapien.accounts.service import load_session_user
    from sapien.web import redirect_to

    login_manager.init_app(app)
    login_manager.login_message = _l("Please sign in to see that page.")
    login_manager.login_message_category = "info"
    login_manager.user_loader(load_session_user)

    @login_manager.unauthorized_handler
    def _unauthorized():
        flash(str(login_manager.login_message), "info")
        return redirect_to(url_for("accounts.login", next=request.full_path.rstrip("?")))


def _register_models() -> None:
    # Import every area's models so Alembic and relationships see the whole schema.
    from sapien import job_attempts as _job_attempts  # noqa: F401
    from sapien.accounts import models as _accounts  # noqa: F401
    from sapien.airdrops import models as _airdrops  # noqa: F401
    from sapien.api import models as _api  # noqa: F401
    from sapien.arena import models as _arena  # noqa: F401
    from sapien.chain import models as _chain  # noqa: F401
    from sapien.chain import payout_models as _payouts  # noqa: F401
    from sapien.chain import wallet_models as _wallets  # noqa: F401
    from sapien.economy import models as _economy  # noqa: F401
    from sapien.governance import models as _governance  # noqa: F401
    from sapien.guilds import models as _guilds  # noqa: F401
    from sapien.labeling import models as _labeling  # noqa: F401
    from sapien.leaderboards import models as _leaderboards  # noqa: F401
    from sapien.ledger import models as _ledger  # noqa: F401
    from sapien.moderation import models as _moderation  # noqa: F401
    from sapien.notifications import models as _notifications  # noqa: F401
    from sapien.progression import models as _progression  # noqa: F401
    from sapien.quality import models as _quality  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from sapien.accounts.views import bp as accounts_bp
    from sapien.airdrops.views import bp as airdrops_bp
    from sapien.arena.clash_views import clash_bp
    from sapien.arena.views import bp as arena_bp
    from sapien.chain.views import bp as chain_bp
    from sapien.economy.views import bp as economy_bp
    from sapien.governance.views import bp as governance_bp
    from sapien.guilds.views import bp as guilds_bp
    from sapien.health import bp as health_bp
    from sapien.home.views import bp as home_bp
    from sapien.labeling.views import bp as labeling_bp
    from sapien.leaderboards.views import bp as leaderboards_bp
    from sapien.moderation.views import bp as moderation_bp
    from sapien.moderation.views import standing_bp
    from sapien.notifications.views import bp as notifications_bp
    from sapien.progression.views import bp as progression_bp
    from sapien.quality.views import bp as quality_bp

    for blueprint in (
        home_bp, accounts_bp, progression_bp, notifications_bp, leaderboards_bp, guilds_bp, moderation_bp, health_bp, labeling_bp, quality_bp,
        chain_bp, economy_bp, governance_bp, airdrops_bp, standing_bp, arena_bp, clash_bp,
    ):
        app.register_blueprint(blueprint)
    from sapien.api.views import register_api

    register_api(app)


def _register_template_context(app: Flask) -> None:
    from sapien.home.service import nav_pending, nav_summary

    @app.context_processor
    def _nav():
        # `me` is the plain user object: templates read it often, and the proxy costs on every read.
        me = current_user._get_current_object()
        context = {"languages": app.config["LANGUAGES"], "me": me}
        if me.is_authenticated:
            # Balances, level and pending rewards are read only where a template shows them (the nav's status bar).
            context.update(nav_status=lambda: nav_summary(me.id), nav_pending=lambda: nav_pending(me.id))
        return context
