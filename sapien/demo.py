"""Demo data: a believable community to explore on a fresh install. Deterministic (seeded RNG)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sapien.accounts import service as accounts
from sapien.airdrops.demo import seed_demo_airdrop_data
from sapien.database import unit_of_work
from sapien.governance.demo import seed_demo_proposals
from sapien.guilds import founding, membership
from sapien.labeling.seeding import seed_demo_history, seed_demo_packs
from sapien.leaderboards.rebuild import rebuild_all
from sapien.ledger import service as ledger
from sapien.moderation.safety.demo_ring import seed_ring
from sapien.moderation.safety.scan import run_scan
from sapien.progression.levels import xp_for_level
from sapien.progression.quest_catalogue import rotate_quests
from sapien.quality.decisions import decide_awaiting_items

DEMO_PASSWORD = "sapien-demo-2026"
DEMO_LOGINS = {
    "member": "demo_member",
    "reviewer": "demo_reviewer",
    "guild_leader": "demo_leader",
    "moderator": "demo_moderator",
    "admin": "demo_admin",
}

# (country, time zone, given names, family names)
COUNTRIES = [
    ("ID", "Asia/Jakarta", ["Budi", "Siti", "Agus", "Dewi", "Rizky", "Putri"], ["Santoso", "Wijaya", "Pratama", "Lestari"]),
    ("FR", "Europe/Paris", ["Camille", "Louis", "Chloé", "Hugo", "Léa", "Jules"], ["Martin", "Bernard", "Dubois", "Moreau"]),
    ("NG", "Africa/Lagos", ["Chinedu", "Amaka", "Tunde", "Ngozi", "Emeka", "Funmi"], ["Okafor", "Adeyemi", "Eze", "Bello"]),
    ("BR", "America/Sao_Paulo", ["Lucas", "Ana", "Gabriel", "Beatriz", "Rafael", "Júlia"], ["Silva", "Santos", "Oliveira", "Souza"]),
    ("IN", "Asia/Kolkata", ["Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Isha"], ["Sharma", "Patel", "Iyer", "Reddy"]),
    ("PH", "Asia/Manila", ["Jose", "Maria", "Paolo", "Andrea", "Miguel", "Bea"], ["Reyes", "Cruz", "Bautista", "Garcia"]),
    ("VN", "Asia/Ho_Chi_Minh", ["Minh", "Linh", "Huy", "Trang", "Duc", "Mai"], ["Nguyen", "Tran", "Le", "Pham"]),
    ("KE", "Africa/Nairobi", ["Wanjiru", "Otieno", "Achieng", "Kamau", "Njeri", "Mwangi"], ["Odhiambo", "Kariuki", "Mutua", "Wafula"]),
    ("US", "America/New_York", ["Emily", "James", "Olivia", "Michael", "Ava", "Daniel"], ["Johnson", "Brown", "Miller", "Davis"]),
    ("DE", "Europe/Berlin", ["Lena", "Felix", "Mia", "Jonas", "Hannah", "Paul"], ["Müller", "Schmidt", "Weber", "Wagner"]),
    ("MX", "America/Mexico_City", ["Sofía", "Diego", "Valentina", "Mateo", "Regina", "Santiago"], ["Hernández", "López", "Martínez", "Ramírez"]),
    ("JP", "Asia/Tokyo", ["Haruto", "Yui", "Sota", "Hina", "Ren", "Aoi"], ["Sato", "Suzuki", "Takahashi", "Tanaka"]),
    ("EG", "Africa/Cairo", ["Omar", "Nour", "Youssef", "Mariam", "Karim", "Salma"], ["Hassan", "Mahmoud", "Ibrahim", "Farouk"]),
    ("PK", "Asia/Karachi", ["Ali", "Ayesha", "Hamza", "Fatima", "Bilal", "Zainab"], ["Khan", "Ahmed", "Malik", "Qureshi"]),
    ("TR", "Europe/Istanbul", ["Emre", "Elif", "Burak", "Zeynep", "Can", "Ece"], ["Yılmaz", "Kaya", "Demir", "Şahin"]),
    ("PL", "Europe/Warsaw", ["Jakub", "Zuzanna", "Kacper", "Julia", "Szymon", "Maja"], ["Nowak", "Kowalski", "Wiśniewski", "Wójcik"]),
    ("CA", "America/Toronto", ["Liam", "Charlotte", "Noah", "Amelia", "Ethan", "Chloe"], ["Tremblay", "Roy", "Gagnon", "Smith"]),
    ("AR", "America/Argentina/Buenos_Aires", ["Martina", "Thiago", "Catalina", "Benjamín", "Lucía", "Joaquín"], ["González", "Rodríguez", "Fernández", "Pérez"]),
    ("GH", "Africa/Accra", ["Kwame", "Ama", "Kofi", "Akosua", "Yaw", "Efua"], ["Mensah", "Owusu", "Boateng", "Asante"]),
    ("BD", "Asia/Dhaka", ["Rahim", "Nusrat", "Tanvir", "Farhana", "Sakib", "Mim"], ["Hossain", "Rahman", "Islam", "Akter"]),
    ("UA", "Europe/Kyiv", ["Oleksandr", "Anastasiia", "Dmytro", "Sofiia", "Andrii", "Kateryna"], ["Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko"]),
    ("ZA", "Africa/Johannesburg", ["Thabo", "Lerato", "Sipho", "Naledi", "Bongani", "Zanele"], ["Nkosi", "Dlamini", "Mokoena", "Botha"]),
]


def _grant_history(rng: random.Random, user_id: int, activity: float, now: datetime) -> None:
    """A few weeks of past earnings (one entry a week), so boards, levels and balances show something."""
    weeks = rng.randint(1, 9)
    for week in range(weeks):
        when = now - timedelta(days=7 * week + rng.randint(0, 6), hours=rng.randint(0, 23))
        xp = int(rng.randint(30, 300) * activity) + 1
        ledger.credit(user_id, "xp", xp, kind="demo_history", key=f"demo:xp:{user_id}:{week}", now=when)
        ledger.credit(user_id, "points", xp * 3, kind="demo_history", key=f"demo:pts:{user_id}:{week}", now=when)


def seed_demo(members: int, now: datetime) -> bool:
    """Create the demo community once; returns False if it is already there."""

    if accounts.get_by_username(DEMO_LOGINS["admin"]) is not None:
        return False
    with unit_of_work():  # one commit for the whole community: thousands of entries in seconds
        _seed(members, now)
        seed_demo_airdrop_data(now)  # linked wallets and a recognized guild, for docs/examples/airdrop.json
    # The boards are a cache of the ledger: build them once the whole history is committed.
    rebuild_all(now)
    rotate_quests(now)  # today's and this week's quests from the default catalogue
    run_scan(now)  # the seeded ring of cheats is flagged in the moderators' console
    return True


# (name, join policy, minimum level, description); the first is led by the demo guild leader.
DEMO_GUILDS = [
    ("Sapien Pioneers", "open", 1, "The first guild on Sapien. Everyone is welcome: label, learn, level up together."),
    ("Pixel Perfect", "application", 2, "Image specialists. Tell us which labeling tasks you enjoy when you apply."),
    ("Night Owls", "open", 1, "We label when the rest of the world sleeps. Weekly sprints every Sunday."),
    ("Gold Standard", "invite", 3, "Accuracy first. Invite-only: our officers scout members with great gold scores."),
    ("Polyglots", "open", 2, "Text and audio in many languages. Bahasa, français, English and more."),
    ("Quiet Quality", "application", 1, "Slow and careful wins. A friendly guild for new members."),
]


def _seed_guilds(rng: random.Random, member_ids: list[int], now: datetime) -> None:
    """Several guilds with leaders (the demo guild leader leads the first), members spread across them."""

    founder_level = 3
    leader_ids = [accounts.get_by_username(DEMO_LOGINS["guild_leader"]).id]
    by_xp = sorted(member_ids, key=lambda uid: -ledger.balance(uid, "xp"))
    leader_ids += by_xp[: len(DEMO_GUILDS) - 1]
    guild_ids = []
    for leader_id, (name, policy, min_level, description) in zip(leader_ids, DEMO_GUILDS, strict=False):
        missing = xp_for_level(founder_level) - ledger.balance(leader_id, "xp")
        if missing > 0:
            ledger.credit(leader_id, "xp", missing, kind="demo_history", key=f"demo:xp:founder:{leader_id}", now=now)
        guild = founding.create_guild(
            leader_id, founding.GuildDraft(name=name, description=description, join_policy=policy, min_level=min_level), now
        )
        guild_ids.append((guild, leader_id))
    room = {guild.id: membership._max_members() - 1 for guild, _ in guild_ids}
    for user_id in member_ids:
        if user_id in leader_ids or rng.random() < 0.35:
            continue  # about a third of the community stays unaffiliated
        guild, leader_id = rng.choice(guild_ids)
        if room[guild.id] <= 0 or membership.member_level(user_id) < guild.min_level:
            continue
        room[guild.id] -= 1
        if guild.join_policy == "open":
            membership.join(user_id, guild.id, now)
        elif guild.join_policy == "application":
            application = membership.apply(user_id, guild.id, rng.choice(["", "Happy to help!", "I label every evening."]), now)
            if rng.random() < 0.85:
                membership.decide_application(leader_id, guild.id, application.id, True, now)
        else:
            invitation = membership.invite(leader_id, guild.id, accounts.get_user(user_id).username, now)
            membership.respond_invitation(user_id, invitation.id, True, now)
    for guild, _leader_id in guild_ids:  # a few officers in every guild
        members = [uid for uid, gid in membership.all_memberships().items() if gid == guild.id and uid != _leader_id]
        for officer_id in members[:2]:
            membership.set_role(_leader_id, guild.id, officer_id, "officer", now)
    # The demo member has an invitation waiting, to try the invitation flow.
    invite_only, inviter = next((g, lid) for g, lid in guild_ids if g.join_policy == "invite")
    membership.invite(inviter, invite_only.id, DEMO_LOGINS["member"], now)


def _seed(members: int, now: datetime) -> None:
    rng = random.Random(2026)
    # One scrypt hash for every demo account: hashing hundreds of passwords would take a minute.
    password_hash = accounts.hash_password(DEMO_PASSWORD)
    member_ids: list[int] = []
    for role, username in DEMO_LOGINS.items():
        country, zone, given, family = COUNTRIES[len(username) % len(COUNTRIES)]
        user = accounts.sign_up(
            accounts.SignUp(
                username=username,
                email=f"{username}@demo.sapien.local",
                password="",
                display_name=f"Demo {role.replace('_', ' ').title()}",
                country=country,
                timezone=zone,
            ),
            now=now - timedelta(days=90),
            role=role,
            password_hash=password_hash,
        )
        _grant_history(rng, user.id, activity=2.0, now=now)
    for index in range(members):
        country, zone, given, family = rng.choice(COUNTRIES)
        first, last = rng.choice(given), rng.choice(family)
        username = f"{first}.{last}{index}".lower().replace(" ", "")
        user = accounts.sign_up(
            accounts.SignUp(
                username=username[:32],
                email=f"member{index}@demo.sapien.local",
                password="",
                display_name=f"{first} {last}",
                country=country,
                timezone=zone,
            ),
            now=now - timedelta(days=rng.randint(1, 120)),
            password_hash=password_hash,
        )
        # A long tail: most members are casual, a few are very active.
        _grant_history(rng, user.id, activity=rng.paretovariate(1.5), now=now)
        member_ids.append(user.id)
    _seed_guilds(rng, member_ids, now)

    seed_demo_packs(now)
    demo_ids = [accounts.get_by_username(DEMO_LOGINS[role]).id for role in ("member", "reviewer")]
    seed_demo_history(demo_ids, now)
    decide_awaiting_items(now=now)  # the decision job's work for that history (the worker is not running yet)
    # Governance: stakers, and a proposal in every state (the demo guild leader, level 3, proposes).
    seed_demo_proposals(rng, accounts.get_by_username(DEMO_LOGINS["guild_leader"]).id, member_ids, now)
    # A ring of cheating accounts for the trust & safety console (they sign in with the demo password too).
    seed_ring(now, password_hash=password_hash)
