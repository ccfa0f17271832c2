"""The SDK driven against the live test server: the README's example end to end (gold items, members
labeling, the webhook firing, verified results with confidences), the sync client's errors and the async client."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest
from sapien_sdk import AsyncClient, Client, SapienError, verify_signature

from tests.api.conftest import label_everything, make_org
from tests.api.test_webhooks import Receiver, run_pending_jobs

README = Path(__file__).resolve().parents[2] / "sdk" / "README.md"


def readme_example() -> str:
    return re.search(r"```python\n(from sapien_sdk import Client\n.*?)```", README.read_text(), re.S).group(1)


def fresh_read():
    from sapien.extensions import db

    db.session.rollback()  # see what the live server committed since


def test_the_readme_example_runs_against_the_live_server(ctx, app, live_server):
    from sqlalchemy import select

    from sapien.extensions import db
    from sapien.labeling.models import Campaign, Item, TaskPack
    from tests.labeling.conftest import make_user

    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    app.config["QUALITY_CONFIDENCE_THRESHOLD"] = 0.6  # two agreeing members settle an item
    org = make_org()
    receiver = Receiver()
    try:
        hook = Client(org.write_key, live_server).webhooks.create(receiver.url, ["item.verified", "campaign.done"])
        # The example as written, with this run's key and server (and a quicker poll than a person would use).
        code = code.replace('"sk_…"', repr(org.write_key)).replace('"http://127.0.0.1:5000"', repr(live_server))
        code = code.replace("campaign.wait_until_done()", "campaign.wait_until_done(poll=0.2, timeout=60, progress_bar=True)")
        scope: dict = {}
        errors: list[BaseException] = []

        def run():
            try:
                exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - the README's own example
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        example = threading.Thread(target=run, daemon=True)
        example.start()
        deadline = time.monotonic() + 30
        pack_id = None
        while pack_id is None and time.monotonic() < deadline and not errors:
            fresh_read()
            pack_id = db.session.scalar(
                select(TaskPack.id).join(Campaign, Campaign.id == TaskPack.campaign_id)
                .where(Campaign.organization_id == org.id, TaskPack.status == "open")
            )
            time.sleep(0.1)
        assert pack_id is not None, errors
        label_everything(pack_id, [make_user() for _ in range(2)], lambda item: {"labels": ["pos" if "Great" in item.payload["text"] else "neg"]})
        example.join(timeout=60)
        assert not example.is_alive() and not errors, errors
        frame = scope["df"]
        assert sorted(frame["external_id"]) == ["r1", "r2"]
        assert dict(zip(frame["external_id"], frame["label"], strict=True)) == {"r1": "pos", "r2": "neg"}
        assert frame["confidence"].between(0, 1).all() and (frame["answers"] >= 2).all()
        fresh_read()
        assert db.session.scalar(select(Item.is_gold).where(Item.external_id == "g1")) is True
        assert run_pending_jobs() == ["delivered"] * 3
        events = [verify_signature(hook["secret"], body, headers["Sapien-Signature"]) for headers, body in receiver.requests]
        assert sorted(e["event"] for e in events) == ["campaign.done", "item.verified", "item.verified"]
    finally:
        receiver.close()


def test_sync_client_uploads_files_and_raises_problems(ctx, live_server, tmp_path):
    org = make_org()
    with Client(org.write_key, live_server) as client:
        assert client.me()["scope"] == "write"
        campaign = client.campaigns.create(name="Files", task_type="text_classification", labels=["a", "b"], redundancy=2)
        items = tmp_path / "batch.csv"
        items.write_text("external_id,text\nx1,first\nx2,\nx3,third\n")
        report = campaign.upload(items)
        assert report["imported"] == 2 and report["problems"][0]["line"] == 3
        assert campaign.refresh().status == "active" and campaign.pause().status == "paused"
        assert campaign.pay(1999, external_ref="inv-9")["amount"] == 1999
        assert [c.id for c in client.campaigns.list()] == [campaign.id]
        with pytest.raises(SapienError) as refused:
            client.campaigns.get(campaign.id + 1000)
        assert refused.value.status == 404 and refused.value.problem["type"] == "/api/v1/problems/not-found"
        out = campaign.download(tmp_path / "results.jsonl")
        assert out.read_text() == ""  # nothing verified yet
    with Client(org.read_key, live_server, retries=0) as reader, pytest.raises(SapienError) as forbidden:
        reader.campaigns.create(name="Nope", task_type="text_classification", labels=["a", "b"])
    assert forbidden.value.status == 403


def test_async_client(ctx, live_server):
    org = make_org()

    async def journey():
        async with AsyncClient(org.write_key, live_server) as client:
            created = await client.create_campaign(name="Async", task_type="text_classification", labels=["a", "b"])
            report = await client.upload(created["id"], [{"external_id": "a1", "text": "one"}, {"external_id": "a2"}])
            progress = await client.progress(created["id"])
            results = [record async for record in client.results(created["id"])]
            return report, progress, results

    # In a thread of its own: a Playwright session in this process keeps an event loop on the main thread.
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.append(asyncio.run(journey())))
    runner.start()
    runner.join(timeout=60)
    report, progress, results = outcome[0]
    assert report["imported"] == 1 and report["rejected"] == 1
    assert progress.items == 1 and not progress.done and results == []
