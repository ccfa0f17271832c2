"""Demo data for airdrops: most demo members get a linked wallet (deterministic, see
`sapien.chain.airdrop_chain.demo_wallet_address`) and the first demo guild is recognized, so
docs/examples/airdrop.json gives a real tree over the demo community."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from sapien.accounts.models import User
from sapien.airdrops.models import RecognizedGuild
from sapien.chain.airdrop_chain import demo_wallet_address
from sapien.chain.wallet_models import Wallet
from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.guilds.models import Guild

WITHOUT_WALLET_EVERY = 7  # every seventh demo member has no wallet (and shows as excluded)


def seed_demo_airdrop_data(now: datetime) -> int:
    """Link demo wallets and recognize the first guild; returns how many wallets were linked."""
    with unit_of_work() as session:
        linked = set(session.scalars(select(Wallet.user_id)))
        users = session.execute(select(User.id, User.username).order_by(User.id)).all()
        count = 0
        for position, (user_id, username) in enumerate(users):
            if user_id in linked or position % WITHOUT_WALLET_EVERY == WITHOUT_WALLET_EVERY - 1:
                continue
            session.add(Wallet(user_id=user_id, address=demo_wallet_address(username), linked_at=now))
            count += 1
        first_guild = session.scalar(select(Guild.id).order_by(Guild.id).limit(1))
        if first_guild is not None and db.session.get(RecognizedGuild, first_guild) is None:
            session.add(RecognizedGuild(guild_id=first_guild, recognized_by=None, recognized_at=now))
    return count
