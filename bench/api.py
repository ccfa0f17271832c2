"""The client API (issue 17), on PostgreSQL behind gunicorn (2 workers):

- the status endpoint (`GET /api/v1/campaigns/<id>/progress`, key-authenticated and rate-counted) answers
  at p99 under 20 ms, one client polling; the ceiling is a static file through the same app, polled the same way;
- exporting 100,000 verified labels as a JSONL stream over HTTP takes under 5 s; the ceiling is a bare
  `COPY (SELECT …) TO STDOUT` of the same rows (the same join) read by psycopg;
- 10,000 webhook deliveries (the webhook's sending job: read a batch, sign, POST each over one kept-alive
  connection, record the batch) to a receiver on 127.0.0.1 take under 60 s; the ceiling is 10,000 bare POSTs of the same bodies with the same client.

`BENCH_API_LABELS` and `BENCH_API_DELIVERIES` shrink the run (the figures then say so).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from bench.harness import (
    BENCH_DATABASE_URL,
    Figure,
    app_env,
    fresh_app,
    gunicorn,
)

NAME = "Client API, gunicorn 2 workers, PostgreSQL"
LABELS = int(os.environ.get("BENCH_API_LABELS", "100000"))
DELIVERIES = int(os.environ.get("BENCH_API_DELIVERIES", "10000"))
STATUS_ITEMS = 2_000  # the polled campaign's size
STATUS_REQUESTS = 2_000
GOAL_STATUS_P99_MS = 20.0
GOAL_EXPORT_SECONDS = 5.0
GOAL_DELIVERY_SECONDS = 60.0

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_port, flush=True)
server.serve_forever()
"""



def seed_campaign(organization_id: int, *, items: int, verified: bool, now) -> int:
    """A campaign of the organization with one pack of `items` items (each with a verified label when
    `verified`), written in bulk SQL. Returns the campaign id."""
    from sqlalchemy import text

    from sapien.api import campaigns
    from sapien.extensions import db

    campaign = campaigns.create_campaign(
        organization_id,
        campaigns.CampaignSpec(name=f"Bench {items}", pack=campaigns.PackSpec(name="Bench pack", task_type="text_classification", labels=["pos", "neg"])),
        now=now,
    )
    pack_id = campaigns.campaign_packs(campaign.id)[0].id
    session = db.session
    session.execute(
        text("INSERT INTO items (pack_id, external_id, external_key, payload, is_gold, is_exam, gold_explanation, status, labels_target,"
             " slots_taken, created_at) SELECT :pack, 'x' || n, md5('x' || n) || md5('y' || n), '{\"text\": \"bench item\"}', false, false, '',"
             " :status, 3, 3, :now FROM generate_series(1, :items) AS n"),
        {"pack": pack_id, "items": items, "now": now, "status": "retired" if verified else "open"},
    )
    if verified:
        session.execute(
            text("INSERT INTO verified_labels (item_id, pack_id, answer, confidence, method, submission_ids, contributor_ids, review_ids,"
                 " labels_used, verified_at) SELECT id, :pack, '{\"labels\": [\"pos\"]}', 0.97, 'online_vote', '[]', '[]', '[]', 3, :now"
                 " FROM items WHERE pack_id = :pack"),
            {"pack": pack_id, "now": now},
        )
    session.execute(text("UPDATE task_packs SET status = 'open' WHERE id = :pack"), {"pack": pack_id})
    session.commit()
    return campaign.id


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _poll(client, url: str, headers: dict, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
    return samples


def _bare_dump_seconds(pack_id: int) -> tuple[float, int]:
    import psycopg

    started = time.perf_counter()
    size = 0
    with psycopg.connect(BENCH_DATABASE_URL) as connection, connection.cursor() as cursor:
        query = ("COPY (SELECT v.item_id, i.external_id, v.pack_id, v.answer, v.confidence, v.labels_used, v.method, v.verified_at"
                 f" FROM verified_labels v JOIN items i ON i.id = v.item_id WHERE v.pack_id = {int(pack_id)} ORDER BY v.item_id) TO STDOUT")
        with cursor.copy(query) as copy:
            for chunk in copy:
                size += len(chunk)
    return time.perf_counter() - started, size


def _deliveries(app, organization_id: int, receiver_url: str, count: int, now) -> tuple[float, float]:
    """(seconds for `count` deliveries through the job, seconds for `count` bare POSTs of the same bodies)."""
    from sqlalchemy import select, text

    from jobs.api import deliver_webhooks
    from sapien.api import webhooks
    from sapien.api.models import WebhookDelivery
    from sapien.extensions import db

    webhook, _secret = webhooks.register_webhook(organization_id, url=receiver_url, events=["item.verified"], now=now)
    db.session.execute(
        text("INSERT INTO api_webhook_deliveries (webhook_id, event, event_key, payload, status, attempts, round, last_error, created_at)"
             " SELECT :hook, 'item.verified', 'item.verified:' || n, CAST(:payload AS json), 'pending', 0, 1, '', :now"
             " FROM generate_series(1, :count) AS n"),
        {"hook": webhook.id, "count": count, "now": now,
         "payload": '{"event": "item.verified", "data": {"item_id": 1, "label": "pos", "confidence": 0.97, "answers": 3}}'},
    )
    db.session.commit()
    ids = list(db.session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id).order_by(WebhookDelivery.id)))
    started = time.perf_counter()
    delivered = deliver_webhooks(webhook.id)
    job_seconds = time.perf_counter() - started
    if delivered != len(ids):
        raise RuntimeError(f"{delivered} of {len(ids)} deliveries were delivered")
    client = webhooks._http_client()
    body = b'{"data":{"answers":3,"confidence":0.97,"item_id":1,"label":"pos"},"event":"item.verified","id":1}'
    started = time.perf_counter()
    for _ in ids:
        client.post(receiver_url, content=body, headers={"Content-Type": "application/json"})
    return job_seconds, time.perf_counter() - started


def run() -> list[Figure]:
    import httpx2

    from sapien.api import keys, orgs
    from sapien.database import utcnow

    app = fresh_app()
    with app.app_context():
        now = utcnow()
        organization_id = orgs.create_organization("Bench Corp", "bench-corp", now=now).id
        _key, token = keys.create_key(organization_id, name="bench", scope="read", actor_id=None, now=now)
        status_campaign = seed_campaign(organization_id, items=STATUS_ITEMS, verified=False, now=now)
        export_campaign = seed_campaign(organization_id, items=LABELS, verified=True, now=now)
        from sapien.api.campaigns import campaign_packs

        export_pack = campaign_packs(export_campaign)[0].id
    env = app_env(API_RATE_LIMIT_PER_MINUTE="0")
    headers = {"Authorization": f"Bearer {token}"}
    with gunicorn("app:app", env=env) as base, httpx2.Client(base_url=base, timeout=60) as client:
        status_url = f"/api/v1/campaigns/{status_campaign}/progress"
        _poll(client, status_url, headers, 200)  # warm up
        _poll(client, "/static/css/org.css", {}, 200)
        status = _poll(client, status_url, headers, STATUS_REQUESTS)
        static = _poll(client, "/static/css/org.css", {}, STATUS_REQUESTS)
        client.get(f"/api/v1/campaigns/{export_campaign}/results", params={"format": "jsonl", "limit": 1000}, headers=headers)
        started = time.perf_counter()
        lines = 0
        with client.stream("GET", f"/api/v1/campaigns/{export_campaign}/results", params={"format": "jsonl"}, headers=headers) as response:
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
        export_seconds = time.perf_counter() - started
    if lines != LABELS:
        raise RuntimeError(f"the export streamed {lines} labels, expected {LABELS}")
    dump_seconds, _size = _bare_dump_seconds(export_pack)
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(receiver.stdout.readline())
        with app.app_context():
            job_seconds, bare_seconds = _deliveries(app, organization_id, f"http://127.0.0.1:{port}/hooks", DELIVERIES, utcnow())
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    status_p99 = _p99(status)
    scale = "" if (LABELS, DELIVERIES) == (100_000, 10_000) else " (reduced run)"
    return [
        Figure(NAME, f"status endpoint p99, one client polling a {STATUS_ITEMS:,}-item campaign ({STATUS_REQUESTS:,} requests)",
               round(status_p99, 2), "ms", ceiling=f"a static file through the app, p99 {_p99(static):.2f} ms; status p50 {statistics.median(status):.2f} ms",
               goal=f"< {GOAL_STATUS_P99_MS:.0f} ms", met=status_p99 < GOAL_STATUS_P99_MS),
        Figure(NAME, f"export {LABELS:,} verified labels as a JSONL stream over HTTP{scale}", round(export_seconds, 2), "s",
               ceiling=f"bare COPY of the same rows: {dump_seconds:.2f} s", goal=f"< {GOAL_EXPORT_SECONDS:.0f} s",
               met=export_seconds < GOAL_EXPORT_SECONDS if not scale else None),
        Figure(NAME, f"{DELIVERIES:,} webhook deliveries by the sending job to a local receiver{scale}", round(job_seconds, 2), "s",
               ceiling=f"{DELIVERIES:,} bare POSTs: {bare_seconds:.2f} s", goal=f"< {GOAL_DELIVERY_SECONDS:.0f} s",
               met=job_seconds < GOAL_DELIVERY_SECONDS if not scale else None),
    ]
