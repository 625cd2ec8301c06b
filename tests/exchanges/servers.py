"""StopNCII-shaped and NCMEC-shaped hash exchanges, served for real on 127.0.0.1.

A hub takes entries from the exchanges python-threatexchange (pytx) speaks to. These
servers speak exactly what pytx's clients read, so tests can run the real clients
(``StopNCIIAPI``, ``NCMECHashAPI``) and the real exchanges (``StopNCIISignalExchangeAPI``,
``NCMECSignalExchangeAPI``) against data a test controls, and can make the exchange
misbehave on purpose.

Both servers
- are async context managers: ``async with StopNCIIServer() as server`` serves on a free
  loopback port; ``server.url`` is the base URL the client is given;
- keep a log of every request they answered (``server.served``: method, path, query,
  headers, body, the status answered), so a test can assert what a client sent;
- misbehave on demand: ``fail_next(n, status=500)`` answers the next ``n`` requests with
  that status, ``garble_next(n)`` answers them 200 with a body that is not JSON (StopNCII)
  or not XML (NCMEC). Records a client cannot understand (an unknown signal type, a
  malformed hash, an entry kind NCMEC does not have) are added like any other: the
  methods that add records do not validate on purpose.
- take the clock as ``now: Callable[[], datetime]`` (an aware UTC datetime), so a test
  can move time; modification times are whole seconds, as on the wire.

This module is the face tests use: the servers live in ``_stopncii.py`` and
``_ncmec.py`` (on the shared serving in ``_loopback.py``); here are the pytx clients and
exchanges pointed at them (``stopncii_client``, ``stopncii_credentials``,
``stopncii_exchange``, ``ncmec_client``, ``ncmec_credentials``, ``ncmec_exchange``).

Their error bodies imitate the services they stand in for (Azure API Management's
``{"statusCode", "message"}`` JSON for StopNCII, a small XML document for NCMEC), not
this project's own error shape: a client under test meets what the real service sends.

What pytx (1.2.17) does that one would not guess, pinned by tests/exchanges/test_servers.py:
- ``stop_ncii_api._get_delta_mapping`` compares ``record.hashValue`` (not
  ``record.hashStatus``) with ``Withdrawn``/``Deleted``, so ``fetch_iter`` never yields a
  tombstone: a withdrawn or deleted hash comes out with metadata, as if still live.
  Whoever needs withdrawals must read the client's records (``hashStatus``) itself.
- ``StopNCIIAPI.fetch_hashes`` drops, with only a log line, any record it cannot parse
  (an unknown ``signalType``, a missing field): a hostile server can make records vanish
  without an exception.
- ``StopNCIISignalExchangeAPI.fetch_iter`` passes hash values through unchecked; only
  ``naive_convert_to_signal_type`` validates them, so a malformed PDQ hash is in the
  deltas.
- ``StopNCIIAPI.submit_hashes`` sends ``str(signal_type)``, i.e.
  ``"StopNCIISignalType.ImagePDQ"``, not ``"ImagePDQ"``; ``submit_feedbacks`` sends no
  signal type at all, only the hash value.
- ``hash_api._date_format`` formats ``from``/``to`` in the machine's local time but marks
  them ``Z`` (UTC); they are right only where the local zone is UTC. (It parses
  ``maxTimestamp`` as UTC, correctly.)
- ``NCMECSignalExchangeAPI.fetch_iter`` stops 5 seconds short of now, and starts by
  probing the time range (shrinking it whenever a first page has a ``next``), so it asks
  for many ranges, most of them empty.
- ``NCMECHashAPI.get_entries`` turns any parse failure into a bare
  ``Exception("Failed to parse response: %s", <xml bytes>)``.
- Both clients retry a GET answered 429/500/502/503/504 four times (about 2.8 s of
  back-off) before raising ``requests.exceptions.RetryError``; POSTs are not retried.
"""

from __future__ import annotations

from collections.abc import Iterable

from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEnvironment, NCMECHashAPI
from threatexchange.exchanges.clients.stopncii.api import StopNCIIAPI, StopNCIIEndpoint
from threatexchange.exchanges.collab_config import CollaborationConfigBase
from threatexchange.exchanges.impl.ncmec_api import (
    NCMECCollabConfig,
    NCMECCredentials,
    NCMECSignalExchangeAPI,
)
from threatexchange.exchanges.impl.stop_ncii_api import (
    StopNCIICredentials,
    StopNCIISignalExchangeAPI,
)

from tests.exchanges._loopback import ServedRequest
from tests.exchanges._ncmec import NCMECEntry, NCMECServer
from tests.exchanges._stopncii import StopNCIIRecord, StopNCIIServer

__all__ = [
    "NCMECEntry",
    "NCMECServer",
    "ServedRequest",
    "StopNCIIRecord",
    "StopNCIIServer",
    "ncmec_client",
    "ncmec_credentials",
    "ncmec_exchange",
    "stopncii_client",
    "stopncii_credentials",
    "stopncii_exchange",
]


def stopncii_client(server: StopNCIIServer) -> StopNCIIAPI:
    """pytx's StopNCII client with every key the server knows, talking to the server."""
    return StopNCIIAPI(
        server.subscription_key,
        server.function_keys[StopNCIIEndpoint.FetchHashes],
        additional_function_keys=server.function_keys,
        base_url_override=server.url,
    )


def stopncii_credentials(server: StopNCIIServer) -> StopNCIICredentials:
    """The credentials pytx's ``for_collab`` takes, with the server as base URL override."""
    return StopNCIICredentials(
        fetch_function_key=server.function_keys[StopNCIIEndpoint.FetchHashes],
        subscription_key=server.subscription_key,
        base_url_override=server.url,
    )


def stopncii_exchange(server: StopNCIIServer, name: str = "stopncii") -> StopNCIISignalExchangeAPI:
    """pytx's StopNCII exchange for a collaboration, reading from the server."""
    collab = CollaborationConfigBase(
        name=name, api=StopNCIISignalExchangeAPI.get_name(), enabled=True
    )
    return StopNCIISignalExchangeAPI(collab, stopncii_client(server))


def ncmec_client(server: NCMECServer) -> NCMECHashAPI:
    """pytx's NCMEC client with the server's credentials, talking to the server.

    pytx takes the base URL only from ``NCMECEnvironment``; the client reads
    ``_base_url`` on every request, so pointing it elsewhere after construction is enough.
    """
    client = NCMECHashAPI(server.user, server.password, NCMECEnvironment.test_Industry)
    client._base_url = server.url
    return client


def ncmec_credentials(server: NCMECServer) -> NCMECCredentials:
    """The server's user and password as pytx's credentials (the URL is not in them)."""
    return NCMECCredentials(server.user, server.password)


class _LoopbackNCMECExchange(NCMECSignalExchangeAPI):
    """pytx's NCMEC exchange whose client (made per fetch) talks to a test server."""

    def __init__(self, collab: NCMECCollabConfig, server: NCMECServer) -> None:
        super().__init__(collab, server.user, server.password)
        self._server = server

    def get_client(self, environment: NCMECEnvironment) -> NCMECHashAPI:
        return ncmec_client(self._server)


def ncmec_exchange(
    server: NCMECServer, name: str = "ncmec", only_esp_ids: Iterable[int] = ()
) -> NCMECSignalExchangeAPI:
    """pytx's NCMEC exchange for a collaboration, reading from the server."""
    collab = NCMECCollabConfig(
        name=name, environment=NCMECEnvironment.test_Industry, only_esp_ids=set(only_esp_ids)
    )
    return _LoopbackNCMECExchange(collab, server)
