"""Webhook delivery from the events outbox: signed JSON POSTs, retried with back-off.

Each event is written with one delivery row per configured URL in the same transaction, so no event
is lost to a crash. Deliveries run on the deployment worker's thread, never on a request, with a
short timeout, so a receiver that is down or slow cannot slow scoring.

Signature: ``X-ScoreBridge-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<X-ScoreBridge-Timestamp>.<body>`` with the shared secret (``SCOREBRIDGE_WEBHOOK_SECRET``).
"""
from __future__ import annotations

import hashlib
import hmac
import time

import orjson
import requests
from sqlalchemy import select

from ..registry.deployments import Deployments
from ..registry.schema import EventRow
from ..registry.service import _utc

MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 5.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff(attempts: int) -> float:
    """Seconds before the next try: 2, 4, 8 … capped at 5 minutes."""
    return float(min(2 ** attempts, 300))


class WebhookSender:
    def __init__(self, deployments: Deployments, secret: str) -> None:
        self.deployments = deployments
        self.secret = secret
        self.session = requests.Session()

    def payload(self, event_id: int) -> bytes | None:
        with self.deployments.registry.reading() as session:
            e = session.scalar(select(EventRow).where(EventRow.id == event_id))
            if e is None:
                return None
            return orjson.dumps({
                "id": e.id, "event": e.kind, "model": e.model_name, "version": e.version,
                "actor": e.actor, "detail": e.detail or {},
                "created_at": _utc(e.created_at).isoformat()})  # type: ignore[union-attr]

    def deliver_due(self) -> int:
        """Send what is due; returns how many were delivered."""
        delivered = 0
        for d in self.deployments.due_deliveries():
            if not self.deployments.lease_delivery(d.id, TIMEOUT_SECONDS * 3):
                continue  # another worker has it
            body = self.payload(d.event_id)
            if body is None:
                self.deployments.record_delivery(d.id, False, "event gone", None)
                continue
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "User-Agent": "ScoreBridge-Webhook",
                       "X-ScoreBridge-Delivery": str(d.id), "X-ScoreBridge-Timestamp": stamp,
                       "X-ScoreBridge-Signature": sign(self.secret, stamp, body)}
            try:
                resp = self.session.post(d.url, data=body, headers=headers,
                                         timeout=TIMEOUT_SECONDS, allow_redirects=False)
                ok, error = 200 <= resp.status_code < 300, f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                ok, error = False, type(exc).__name__
            attempts = d.attempts + 1
            retry = None if attempts >= MAX_ATTEMPTS else backoff(attempts)
            self.deployments.record_delivery(d.id, ok, "" if ok else error, retry)
            delivered += ok
        return delivered
