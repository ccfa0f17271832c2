"""Sync and async clients for the Sapien API (httpx2).

Every POST carries an `Idempotency-Key`, so the client retries a POST that failed on the network or with
a 429/5xx without ever doing it twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

DEFAULT_BASE_URL = "http://127.0.0.1:5000"
RETRY_STATUSES = {429, 502, 503, 504}
ItemRows = Iterable[dict[str, Any]] | str | os.PathLike


class SapienError(Exception):
    """An error answer from the API: its RFC 9457 problem (status, title, detail, field, errors…)."""

    def __init__(self, status: int, problem: dict[str, Any]):
        self.status = status
        self.problem = problem
        self.detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        super().__init__(f"{status}: {self.detail}")


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:500]}
        raise SapienError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
    return response


def _items_body(items: ItemRows, media: Iterable[str | os.PathLike] | None) -> dict[str, Any]:
    """httpx keyword arguments for an upload: a JSONL body, or a multipart form with media files."""
    if isinstance(items, (str, os.PathLike)):
        path = Path(items)
        name, content = path.name, path.read_bytes()
    else:
        name, content = "items.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in items).encode()
    if not media:
        kind = "text/csv" if name.lower().endswith(".csv") else "application/x-ndjson"
        return {"content": content, "headers": {"Content-Type": kind}}
    files = [("items", (name, content))] + [("media", (Path(m).name, Path(m).read_bytes())) for m in media]
    return {"files": files}


def _campaign_body(name: str, task_type: str, labels: list[str] | None, guidelines: str, redundancy: int, gold_items: list[dict] | None,
                   budget_points: int | None, deadline: datetime | str | None, description: str, multi_label: bool) -> dict[str, Any]:
    return {
        "name": name, "task_type": task_type, "labels": list(labels or []), "guidelines": guidelines, "redundancy": redundancy,
        "gold_items": list(gold_items or []), "budget_points": budget_points,
        "deadline": deadline.isoformat() if isinstance(deadline, datetime) else deadline, "description": description, "multi_label": multi_label,
    }


@dataclass
class Progress:
    status: str
    items: int
    verified: int
    remaining: int
    percent_done: float
    raw: dict[str, Any] = field(repr=False)

    @property
    def done(self) -> bool:
        return self.status == "done" or (self.items > 0 and self.remaining == 0)


def _progress(data: dict[str, Any]) -> Progress:
    return Progress(data["status"], data["items"], data["verified"], data["remaining"], data["percent_done"], data)


class Results:
    """Verified labels, read page by page as you iterate; `to_dataframe()` collects them into pandas."""

    def __init__(self, pages: Iterator[list[dict[str, Any]]]):
        self._pages = pages

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self._pages:
            yield from page

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame.from_records(list(self), columns=["item_id", "external_id", "pack_id", "label", "answer", "confidence", "answers", "method", "verified_at"])


class _Http:
    def __init__(self, api_key: str, base_url: str, timeout: float, retries: int):
        self.retries = retries
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers={"Authorization": f"Bearer {api_key}", "User-Agent": "sapien-sdk/0.1"})

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if method == "POST":
            headers.setdefault("Idempotency-Key", str(uuid.uuid4()))
        for attempt in range(self.retries + 1):
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                time.sleep(min(2**attempt, 10))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                time.sleep(float(response.headers.get("Retry-After", min(2**attempt, 10))))
                continue
            return _check(response)
        raise AssertionError("unreachable")


class Campaign:
    """A campaign of your organization (`client.campaigns.create(...)` or `.get(id)`)."""

    def __init__(self, http: _Http, data: dict[str, Any]):
        self._http = http
        self.data = data

    id = property(lambda self: self.data["id"])
    name = property(lambda self: self.data["name"])
    status = property(lambda self: self.data["status"])
    packs = property(lambda self: self.data["packs"])

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.name!r} {self.status}>"

    def refresh(self) -> Campaign:
        self.data = self._http.request("GET", f"/api/v1/campaigns/{self.id}").json()
        return self

    def upload(self, items: ItemRows, *, media: Iterable[str | os.PathLike] | None = None, pack_id: int | None = None) -> dict[str, Any]:
        """Upload items (dicts, or a .jsonl/.csv file), with media files the rows name. Returns the report:
        imported, rejected, and the problems by line."""
        params = {"pack_id": pack_id} if pack_id is not None else None
        return self._http.request("POST", f"/api/v1/campaigns/{self.id}/items", params=params, **_items_body(items, media)).json()

    def progress(self) -> Progress:
        return _progress(self._http.request("GET", f"/api/v1/campaigns/{self.id}/progress").json())

    def quality(self) -> dict[str, Any]:
        return self._http.request("GET", f"/api/v1/campaigns/{self.id}/quality").json()

    def pause(self) -> Campaign:
        self.data = self._http.request("POST", f"/api/v1/campaigns/{self.id}/pause").json()
        return self

    def resume(self) -> Campaign:
        self.data = self._http.request("POST", f"/api/v1/campaigns/{self.id}/resume").json()
        return self

    def pay(self, amount: int, *, external_ref: str, currency: str = "USD") -> dict[str, Any]:
        """Record a payment (in the currency's smallest unit); the same external_ref is recorded once."""
        body = {"amount": amount, "currency": currency, "external_ref": external_ref}
        return self._http.request("POST", f"/api/v1/campaigns/{self.id}/payments", json=body).json()

    def wait_until_done(self, *, poll: float = 5.0, timeout: float | None = None, progress_bar: bool = True) -> Progress:
        """Poll the progress until every item is finished, showing a tqdm bar; TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        try:
            while True:
                current = self.progress()
                if progress_bar:
                    if bar is None:
                        from tqdm.auto import tqdm

                        bar = tqdm(total=current.items, desc=f"campaign {self.id}", unit="item")
                    bar.total = current.items
                    bar.n = current.items - current.remaining
                    bar.refresh()
                if current.done:
                    return current
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"campaign {self.id} is {current.percent_done}% done")
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()

    def results(self, *, page_size: int = 1000) -> Results:
        """The verified labels (label, answer, confidence, number of answers…), fetched a page at a time."""

        def pages() -> Iterator[list[dict[str, Any]]]:
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": page_size}
                if cursor:
                    params["cursor"] = cursor
                page = self._http.request("GET", f"/api/v1/campaigns/{self.id}/results", params=params).json()
                yield page["data"]
                cursor = page["next_cursor"]
                if not cursor:
                    return

        return Results(pages())

    def download(self, path: str | os.PathLike, *, format: str = "jsonl") -> Path:  # noqa: A002 - the API's name
        """Stream every verified label to a file as JSONL, CSV or COCO."""
        target = Path(path)
        with self._http.http.stream("GET", f"/api/v1/campaigns/{self.id}/results", params={"format": format}) as response:
            if response.status_code >= 400:
                response.read()
                _check(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target


class Campaigns:
    def __init__(self, http: _Http):
        self._http = http

    def create(self, *, name: str, task_type: str, labels: list[str] | None = None, guidelines: str = "", redundancy: int = 3,
               gold_items: list[dict] | None = None, budget_points: int | None = None, deadline: datetime | str | None = None,
               description: str = "", multi_label: bool = False) -> Campaign:
        body = _campaign_body(name, task_type, labels, guidelines, redundancy, gold_items, budget_points, deadline, description, multi_label)
        return Campaign(self._http, self._http.request("POST", "/api/v1/campaigns", json=body).json())

    def get(self, campaign_id: int) -> Campaign:
        return Campaign(self._http, self._http.request("GET", f"/api/v1/campaigns/{campaign_id}").json())

    def list(self) -> Iterator[Campaign]:
        cursor = None
        while True:
            page = self._http.request("GET", "/api/v1/campaigns", params={"cursor": cursor} if cursor else None).json()
            for data in page["data"]:
                yield Campaign(self._http, data)
            cursor = page["next_cursor"]
            if not cursor:
                return


class Webhooks:
    def __init__(self, http: _Http):
        self._http = http

    def create(self, url: str, events: list[str]) -> dict[str, Any]:
        """Register a URL; the answer's `secret` signs every delivery (keep it for `verify_signature`)."""
        return self._http.request("POST", "/api/v1/webhooks", json={"url": url, "events": events}).json()

    def list(self) -> list[dict[str, Any]]:
        return self._http.request("GET", "/api/v1/webhooks").json()["data"]

    def deliveries(self, webhook_id: int) -> list[dict[str, Any]]:
        return self._http.request("GET", f"/api/v1/webhooks/{webhook_id}/deliveries").json()["data"]

    def redeliver(self, webhook_id: int, delivery_id: int) -> dict[str, Any]:
        return self._http.request("POST", f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver").json()


class Client:
    """`Client(api_key, base_url)`: `.campaigns`, `.webhooks`, `.me()`."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *, timeout: float = 30.0, retries: int = 3):
        api_key = api_key or os.environ.get("SAPIEN_API_KEY")
        if not api_key:
            raise ValueError("give an API key (or set SAPIEN_API_KEY)")
        self._http = _Http(api_key, base_url or os.environ.get("SAPIEN_BASE_URL", DEFAULT_BASE_URL), timeout, retries)
        self.campaigns = Campaigns(self._http)
        self.webhooks = Webhooks(self._http)

    def me(self) -> dict[str, Any]:
        return self._http.request("GET", "/api/v1/me").json()

    def close(self) -> None:
        self._http.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


# --- async ----------------------------------------------------------------------------------------

class AsyncClient:
    """The async twin of `Client`: `await client.create_campaign(...)`, `client.results(id)` (async iterator)."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *, timeout: float = 30.0, retries: int = 3):
        api_key = api_key or os.environ.get("SAPIEN_API_KEY")
        if not api_key:
            raise ValueError("give an API key (or set SAPIEN_API_KEY)")
        self.retries = retries
        self.http = httpx.AsyncClient(
            base_url=(base_url or os.environ.get("SAPIEN_BASE_URL", DEFAULT_BASE_URL)).rstrip("/"), timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "sapien-sdk/0.1"},
        )

    async def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if method == "POST":
            headers.setdefault("Idempotency-Key", str(uuid.uuid4()))
        for attempt in range(self.retries + 1):
            try:
                response = await self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                await asyncio.sleep(min(2**attempt, 10))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(float(response.headers.get("Retry-After", min(2**attempt, 10))))
                continue
            return _check(response)
        raise AssertionError("unreachable")

    async def me(self) -> dict[str, Any]:
        return (await self.request("GET", "/api/v1/me")).json()

    async def create_campaign(self, *, name: str, task_type: str, labels: list[str] | None = None, guidelines: str = "", redundancy: int = 3,
                              gold_items: list[dict] | None = None, budget_points: int | None = None, deadline: datetime | str | None = None,
                              description: str = "", multi_label: bool = False) -> dict[str, Any]:
        body = _campaign_body(name, task_type, labels, guidelines, redundancy, gold_items, budget_points, deadline, description, multi_label)
        return (await self.request("POST", "/api/v1/campaigns", json=body)).json()

    async def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        return (await self.request("GET", f"/api/v1/campaigns/{campaign_id}")).json()

    async def upload(self, campaign_id: int, items: ItemRows, *, media: Iterable[str | os.PathLike] | None = None) -> dict[str, Any]:
        return (await self.request("POST", f"/api/v1/campaigns/{campaign_id}/items", **_items_body(items, media))).json()

    async def progress(self, campaign_id: int) -> Progress:
        return _progress((await self.request("GET", f"/api/v1/campaigns/{campaign_id}/progress")).json())

    async def wait_until_done(self, campaign_id: int, *, poll: float = 5.0, timeout: float | None = None) -> Progress:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = await self.progress(campaign_id)
            if current.done:
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"campaign {campaign_id} is {current.percent_done}% done")
            await asyncio.sleep(poll)

    async def results(self, campaign_id: int, *, page_size: int = 1000) -> AsyncIterator[dict[str, Any]]:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            page = (await self.request("GET", f"/api/v1/campaigns/{campaign_id}/results", params=params)).json()
            for record in page["data"]:
                yield record
            cursor = page["next_cursor"]
            if not cursor:
                return

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.aclose()
