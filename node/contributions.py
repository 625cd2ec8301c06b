"""The platform contributes what its reviewers confirmed (PROTOCOL.md §10.8).

``hashhub-node contribute`` offers the hub one item's hashes as a candidate entry,
signed by the node's key, never the content: a file given is hashed here (a
picture's PDQ with its quality, its MD5 and SHA-256) and only the hashes leave. The
contribution is kept, bytes and sidecar, from signing until the hub answers
(``node.store.contributions``), and sent in ``seq`` order as acks are (§10.6): the
same bytes again after a lost answer, a 401 or 429 or 5xx; never again after a
refusal (400, 403, 413, 415, 422); re-signed above the hub's last ``seq`` after a
409, once per call. The hub's review decides; ``status`` asks it how it went.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from node.errors import NodeError
from node.service import last_seq
from node.store import NodeStore
from protocol import (
    ACK_SIGNATURE_HEADER,
    Contribution,
    SigningKey,
    format_time,
    sign_contribution,
)
from protocol.contribution import ContributedHash, Review

__all__ = ["CONTRIBUTION_REFUSALS", "Contributions", "Delivery"]

CONTRIBUTION_REFUSALS = frozenset({400, 403, 413, 415, 422})
"""Statuses after which a contribution's bytes are never sent again."""
MAX_SEQ_JUMP = 1_000_000
"""A hub's last ``seq`` further above ours than this is not believed (a 409 as a 403)."""


@dataclass(frozen=True)
class Delivery:
    """What one contribution's sending came to."""

    seq: int
    state: str
    """``delivered``, ``refused`` or ``pending`` (not answered; tried again later)."""
    answer: str


class Contributions:
    """Signs, keeps and sends the node's contributions to its hub."""

    def __init__(
        self, store: NodeStore, key: SigningKey, node_id: str, hub_url: str, token: str
    ) -> None:
        self.store = store
        self.key = key
        self.node_id = node_id
        self.hub_url = hub_url
        self.token = token

    def make(
        self,
        hashes: Mapping[str, tuple[bytes, int | None]],
        *,
        category: str,
        classification: str,
        by: str,
        action: str,
        now: datetime,
    ) -> int:
        """Sign a contribution of ``hashes`` (type → hash and quality) and keep it;
        its ``seq``. Refused whole (``MalformedError``) if it breaks a rule of §10.8."""
        with self.store.atomic():
            seq = self.store.contributions.next_seq()
            data, sig = self._signed(seq, hashes, category, classification, by, action, now)
            self.store.contributions.add(seq, data, sig, format_time(now))
        return seq

    def _signed(
        self,
        seq: int,
        hashes: Mapping[str, tuple[bytes, int | None]],
        category: str,
        classification: str,
        by: str,
        action: str,
        now: datetime,
    ) -> tuple[bytes, bytes]:
        contribution = Contribution(
            node=self.node_id,
            seq=seq,
            sent=now,
            hashes={t: ContributedHash(h.hex(), q) for t, (h, q) in hashes.items()},
            category=category,
            classification=classification,
            review=Review(by, action),
        )
        return sign_contribution(contribution, self.key)

    async def send(
        self, session: aiohttp.ClientSession, now: datetime, *, renumber: bool = True
    ) -> list[Delivery]:
        """Send every pending contribution in ``seq`` order; stop at the first that is
        not answered (it keeps its place)."""
        done: list[Delivery] = []
        for row in self.store.contributions.pending():
            seq = int(row["seq"])
            try:
                async with session.post(
                    f"{self.hub_url}/v1/contributions",
                    data=bytes(row["bytes"]),
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        ACK_SIGNATURE_HEADER: base64.b64encode(bytes(row["sig"])).decode(),
                        "Content-Type": "application/json",
                    },
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as resp:
                    text = await resp.text()
                    last = last_seq(resp, seq, MAX_SEQ_JUMP) if resp.status == 409 else None
                    if last is not None and renumber:
                        self._renumber(last, now)
                        return done + await self.send(session, now, renumber=False)
                    answer = _said(resp.status, text)
                    if resp.status == 200:
                        self.store.contributions.answered(seq, "delivered", answer)
                        done.append(Delivery(seq, "delivered", answer))
                        continue
                    if resp.status in CONTRIBUTION_REFUSALS or resp.status == 409:
                        self.store.contributions.answered(seq, "refused", answer)
                        done.append(Delivery(seq, "refused", answer))
                        continue
            except (aiohttp.ClientError, TimeoutError) as e:
                answer = f"{self.hub_url}: {e or type(e).__name__}"
            done.append(Delivery(seq, "pending", answer))
            break
        return done

    def _renumber(self, last: int, now: datetime) -> None:
        """Sign every pending contribution again above the hub's ``last`` seq: same
        content, a new ``seq`` and ``sent``."""
        moved = []
        with self.store.atomic():
            for n, row in enumerate(self.store.contributions.pending(), start=last + 1):
                old = Contribution.from_bytes(bytes(row["bytes"]))
                data, sig = self._signed(
                    n,
                    {t: (bytes.fromhex(h.hex), h.quality) for t, h in old.hashes.items()},
                    old.category,
                    old.classification,
                    old.review.by,
                    old.review.action,
                    now,
                )
                moved.append((int(row["seq"]), n, data, sig))
            self.store.contributions.resigned(moved)

    async def status(self, session: aiohttp.ClientSession, seq: int) -> dict[str, object]:
        """What the hub says of contribution ``seq`` (``GET /v1/contributions/<seq>``).

        Raises:
            NodeError: the hub did not answer 200.
        """
        async with session.get(
            f"{self.hub_url}/v1/contributions/{seq}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise NodeError(f"contribution {seq}: {_said(resp.status, text)}")
            answer = json.loads(text)
            if not isinstance(answer, dict):
                raise NodeError(f"contribution {seq}: the hub's answer is not an object")
            return answer


def _said(status: int, text: str) -> str:
    """``HTTP <status>``: the hub's ``status`` (200) or its error's ``code: message``."""
    try:
        body = json.loads(text)
        if status == 200:
            return f"HTTP 200: {body.get('status', 'received')}"
        error = body["error"]
        return f"HTTP {status}: {error['code']}: {error['message']}"[:400]
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"HTTP {status}: {text[:300]}"
