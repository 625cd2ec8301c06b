"""The hub's SQLite database: schema, migrations, and the one thread that owns it.

sqlite3 connections belong to the thread that opened them, and SQLite allows one
writer at a time, so (as datasette does) one thread owns the connection and every
database call from the async server is sent to it as a small synchronous
function. The CLI, which has no event loop, opens its own connection in its own
thread; WAL mode lets a running server keep reading while it writes.

What is stored, and why it is stored that way:

- ``files``: every published file as its exact bytes. The published tree is
  served from here and exported from here, so what the hub serves is by
  construction what it signed. Immutable files are inserted once, never updated
  (a trigger refuses it); only ``lists/<id>/checkpoint`` is replaced.
- ``entries``: every hash ever added to a list, with provenance (source,
  category, submission id, who, when) and the versions that added and removed it.
- ``staged``: changes waiting for the next publish.
- ``keys``: public halves only. Private keys stay in files (mode 0600).
- ``nodes``, ``tokens``: enrolled platforms and hashed bearer tokens;
  ``node_keys``: every key a node signed acks with, and from which ``seq`` (m005);
  ``nodes.platform``: the platform a node serves, so replicas count together (m006).
- ``acks``: each ack's exact bytes and signature, plus what was read from it.
- ``counters``: each node's cumulative counters as it last reported them, and the
  part counted (``total``, bounded) or withheld as an implausible jump;
  ``counter_totals`` keeps their sums over nodes and ``count_points`` the list's
  totals after each ack, so no view re-adds or re-parses what is stored (m003).
- ``evidence``: refused acks (split views) and withheld counter jumps, once per
  content hash, at most ``max_evidence_per_node`` per node; ``evidence_dropped``
  counts what came past that cap.
- ``actions``: an append-only log of operator actions (triggers refuse edits).
- ``submissions``: public submissions (cases): the hash, its type, the PDQ quality,
  the review. No name, address or other personal data, and the day received
  rather than the second, so a case cannot be lined up with an access log by time;
  since m008 also the SHA-256 of its withdrawal code, the entry it became and its
  withdrawal (state and days).
- ``hash_types``: the registry's hash types (``protocol.hashtypes``), rewritten on
  open; a case of a type the public page does not take is refused by a trigger
  (m004).
- ``entry_items``, ``entry_hashes``, ``entry_pending``, ``entry_records``: the
  entries of ``entries`` lists (m007): each entry's metadata as the operator set it
  (and its retraction), its hash in each list of its collection, which lists'
  records the next publish must bring in line with it, and every record a list
  published, with the versions that added and removed it and why.
- ``disputes``: each dispute of an entry, its state and the operator's decision
  and note (m011); ``acks.with_opinions`` marks the acks the opinion summaries fold.
- ``contributions``: members' signed candidate entries, their bytes and sidecar,
  and the operators' review (m012); ``contribution_trust``, the platforms whose
  contributions are accepted on arrival, and ``contribution_hashes``, each
  contribution's hashes by type, so those carrying one hash are found (m013).
- ``upstream_*``: following upstream hubs, the follower's store of each and which
  upstream record each re-published entry came from (m014).
- ``exchanges``, ``exchange_records``, ``exchange_origins``: the hash exchanges this
  hub takes entries from, each record it read there and the entry it made, and what
  each such entry's provenance names (m015).
- ``frames``: each video's frames, by their SHA-256, the hash of its ``vpdq``
  records; published as a frames file beside each list that adds such a record
  (m016).
- ``web_sessions``: operators' dashboard logins, by the SHA-256 of the session id
  (the id itself is only in the operator's cookie), tied to the token that opened
  them: revoking the token ends its sessions.

Every ``db.atomic()`` transaction begins with ``BEGIN IMMEDIATE``
(``edge.database.ImmediateDatabase``, the node's too): it waits up to
``BUSY_TIMEOUT`` for another process's write lock instead of failing at once
(ADR 0016).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from edge.database import BUSY_TIMEOUT, ImmediateDatabase, connect
from protocol.ack import Ack
from protocol.contribution import Contribution
from protocol.counters import MAX_TOTAL, clamp_total, counter_growth
from protocol.errors import ProtocolError
from protocol.lists import HASH_TYPES

__all__ = [
    "BUSY_TIMEOUT",
    "MAX_TOTAL",
    "migrations",
    "open_database",
    "sync_hash_types",
]


migrations = Migrations("hashhub.hub")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE roots (
            version INTEGER PRIMARY KEY,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE TABLE lists (
            id TEXT PRIMARY KEY,
            hash_type TEXT NOT NULL,
            public INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 0,
            compact TEXT NOT NULL DEFAULT '[]',
            last_leaf TEXT NOT NULL,
            last_created TEXT,
            created TEXT NOT NULL
        );
        CREATE TABLE log_roots (
            list_id TEXT NOT NULL REFERENCES lists(id),
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            result_count INTEGER NOT NULL,
            result_sha256 TEXT NOT NULL,
            PRIMARY KEY (list_id, size)
        );
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL REFERENCES lists(id),
            hash BLOB NOT NULL,
            added_version INTEGER NOT NULL,
            removed_version INTEGER,
            quality INTEGER,
            source TEXT,
            category TEXT,
            submission_id TEXT,
            who TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE UNIQUE INDEX entries_current ON entries(list_id, hash)
            WHERE removed_version IS NULL;
        CREATE TABLE staged (
            id INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL REFERENCES lists(id),
            op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
            hash BLOB NOT NULL,
            quality INTEGER,
            source TEXT,
            category TEXT,
            submission_id TEXT,
            who TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX staged_list ON staged(list_id, id);
        CREATE TABLE files (
            path TEXT PRIMARY KEY,
            bytes BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            immutable INTEGER NOT NULL,
            created TEXT NOT NULL
        );
        CREATE TRIGGER files_immutable BEFORE UPDATE ON files
            WHEN OLD.immutable = 1
            BEGIN SELECT RAISE(ABORT, 'published files are immutable'); END;
        CREATE TRIGGER files_no_delete BEFORE DELETE ON files
            BEGIN SELECT RAISE(ABORT, 'published files are never deleted'); END;
        CREATE TABLE keys (
            keyid TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            public TEXT NOT NULL,
            path TEXT NOT NULL,
            created TEXT NOT NULL,
            retired TEXT
        );
        CREATE TABLE nodes (
            id TEXT PRIMARY KEY,
            public_key TEXT NOT NULL,
            lists TEXT NOT NULL,
            created TEXT NOT NULL,
            revoked TEXT,
            last_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE tokens (
            hash TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('operator', 'node')),
            role TEXT NOT NULL,
            subject TEXT NOT NULL,
            created TEXT NOT NULL,
            revoked TEXT
        );
        CREATE TABLE acks (
            id INTEGER PRIMARY KEY,
            node TEXT NOT NULL REFERENCES nodes(id),
            list_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            received TEXT NOT NULL,
            sent TEXT NOT NULL,
            version INTEGER NOT NULL,
            checkpoint_root BLOB NOT NULL,
            state_count INTEGER NOT NULL,
            state_sha256 TEXT NOT NULL,
            counts TEXT NOT NULL,
            UNIQUE (node, seq)
        );
        CREATE TABLE counters (
            node TEXT NOT NULL,
            list_id TEXT NOT NULL,
            hash TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            last INTEGER NOT NULL,
            offset INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (node, list_id, hash, name)
        );
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            node TEXT,
            list_id TEXT,
            detail TEXT NOT NULL,
            bytes BLOB,
            sig BLOB,
            created TEXT NOT NULL
        );
        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE TRIGGER actions_append_only_update BEFORE UPDATE ON actions
            BEGIN SELECT RAISE(ABORT, 'the action log is append-only'); END;
        CREATE TRIGGER actions_append_only_delete BEFORE DELETE ON actions
            BEGIN SELECT RAISE(ABORT, 'the action log is append-only'); END;
        """
    )


@migrations()
def m002_submissions_and_web_sessions(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE submissions (
            case_number TEXT PRIMARY KEY,
            hash_type TEXT NOT NULL CHECK (hash_type IN ('pdq', 'md5')),
            hash BLOB NOT NULL,
            quality INTEGER,
            status TEXT NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'accepted', 'rejected')),
            received TEXT NOT NULL,
            reviewed TEXT,
            reviewer TEXT,
            list_id TEXT REFERENCES lists(id)
        );
        CREATE INDEX submissions_status ON submissions(status);
        CREATE TABLE web_sessions (
            id_sha256 TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL REFERENCES tokens(hash),
            csrf TEXT NOT NULL,
            created TEXT NOT NULL,
            expires TEXT NOT NULL
        );
        """
    )


# ``MAX_TOTAL`` (from ``protocol.counters``) is the largest counter total the hub
# keeps: the JSON-safe integer (an ack's own bound). Every stored total and every
# sum over nodes is clamped to it, so no node can make SQLite's 64-bit arithmetic
# overflow (ADR 0010).


@migrations()
def m003_ack_ledger(db: sqlite_utils.Database) -> None:
    """Bounded counters with maintained aggregates, deduplicated and capped evidence.

    - ``counters`` is rebuilt: ``total`` (counted, clamped to ``MAX_TOTAL``) replaces
      ``offset``; ``withheld`` keeps what was refused as an implausible jump;
      ``window_start``/``window_growth`` cap one node's growth per interval. An old
      row's ``last + offset`` is carried into ``total``, clamped (a database already
      pushed past 2^63 by reset cycles is repaired here, without hand edits).
    - ``counter_totals``: per (list, hash or '', counter) the sum over nodes
      (clamped) and how many nodes reported it; status, counts and the dashboard read
      it instead of re-adding every row.
    - ``count_points``: a list's totals after each ack, for the dashboard's chart
      (no view parses stored acks).
    - ``evidence.sha256``: identical evidence is stored once per node;
      ``evidence_dropped``: what a node sent past its evidence cap, on record.
    - ``entries_hash``: per-hash counter keys are looked up by (list, hash);
      ``counters_hash``, ``counters_withheld``: one hash's counters of every node,
      and the counters with growth withheld.
    """
    conn = db.conn
    old = conn.execute("SELECT node, list_id, hash, name, last, offset FROM counters").fetchall()
    conn.execute("DROP TABLE counters")
    conn.execute(
        """
        CREATE TABLE counters (
            node TEXT NOT NULL,
            list_id TEXT NOT NULL,
            hash TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            last INTEGER NOT NULL,
            total INTEGER NOT NULL DEFAULT 0,
            withheld INTEGER NOT NULL DEFAULT 0,
            window_start INTEGER NOT NULL DEFAULT 0,
            window_growth INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (node, list_id, hash, name)
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE counter_totals (
            list_id TEXT NOT NULL,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            total INTEGER NOT NULL,
            nodes INTEGER NOT NULL,
            PRIMARY KEY (list_id, hash, name)
        )
        """
    )
    sums: dict[tuple[str, str, str], list[int]] = {}
    rows = []
    for node, list_id, hex_hash, name, last, offset in old:
        total = clamp_total(max(0, int(last)) + max(0, int(offset)))
        last = clamp_total(max(0, int(last)))
        rows.append((node, list_id, hex_hash, name, last, total))
        entry = sums.setdefault((list_id, hex_hash, name), [0, 0])
        entry[0] = clamp_total(entry[0] + total)
        entry[1] += 1 if total > 0 else 0
    conn.executemany(
        "INSERT INTO counters (node, list_id, hash, name, last, total) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    # One hash's counters of every node (flagging weighs each node's share), and the
    # few counters with growth withheld (the counts answer names them).
    conn.execute("CREATE INDEX counters_hash ON counters(list_id, hash)")
    conn.execute("CREATE INDEX counters_withheld ON counters(list_id) WHERE withheld > 0")
    conn.executemany(
        "INSERT INTO counter_totals (list_id, hash, name, total, nodes) VALUES (?, ?, ?, ?, ?)",
        [(*key, total, nodes) for key, (total, nodes) in sums.items()],
    )
    conn.execute(
        """
        CREATE TABLE count_points (
            id INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL,
            received TEXT NOT NULL,
            checked INTEGER NOT NULL,
            matched INTEGER NOT NULL,
            actioned INTEGER NOT NULL,
            blocked INTEGER NOT NULL,
            false_positive INTEGER NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX count_points_list ON count_points(list_id, id)")
    _backfill_count_points(conn)
    conn.execute("ALTER TABLE evidence ADD COLUMN sha256 TEXT")
    for row_id, data in conn.execute(
        "SELECT id, bytes FROM evidence WHERE bytes IS NOT NULL"
    ).fetchall():
        conn.execute(
            "UPDATE evidence SET sha256 = ? WHERE id = ?",
            [hashlib.sha256(bytes(data)).hexdigest(), row_id],
        )
    conn.execute("CREATE INDEX evidence_node ON evidence(node, sha256)")
    conn.execute(
        """
        CREATE TABLE evidence_dropped (
            node TEXT PRIMARY KEY,
            dropped INTEGER NOT NULL,
            first TEXT NOT NULL,
            last TEXT NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX entries_hash ON entries(list_id, hash)")


def _backfill_count_points(conn: sqlite3.Connection) -> None:
    """One chart point per stored ack, as the dashboard computed it before m003."""
    names = ("checked", "matched", "actioned", "blocked", "false_positive")
    latest: dict[tuple[str, str, str], int] = {}
    totals: dict[tuple[str, str, str], int] = {}
    points = []
    for node, list_id, received, counts in conn.execute(
        "SELECT node, list_id, received, counts FROM acks ORDER BY id"
    ):
        parsed = json.loads(counts)
        for name in names:
            key = (list_id, node, name)
            value = parsed.get(name, 0)
            if isinstance(value, int) and value >= 0:
                totals[key] = totals.get(key, 0) + counter_growth(latest.get(key, 0), value)
                latest[key] = value
        sums = dict.fromkeys(names, 0)
        for key, total in totals.items():
            if key[0] == list_id:
                sums[key[2]] += total
        points.append((list_id, received, *(clamp_total(sums[n]) for n in names)))
    conn.executemany(
        "INSERT INTO count_points (list_id, received, checked, matched, actioned, blocked, "
        "false_positive) VALUES (?, ?, ?, ?, ?, ?, ?)",
        points,
    )


@migrations()
def m004_known_hash_types(db: sqlite_utils.Database) -> None:
    """The hash types a case may have, as a table the hub keeps in step, not a CHECK.

    m002 wrote ``CHECK (hash_type IN ('pdq', 'md5'))`` into ``submissions``, and
    SQLite cannot change a CHECK without rebuilding the table: a hub whose registry
    (``protocol.hashtypes``) gained a submittable type would go on refusing it.
    ``hash_types`` holds every registered type (name, width, what the public page
    takes it for), rewritten from the registry on every open
    (``sync_hash_types``); two triggers refuse a case of a type it does not list
    as submittable, as the CHECK did. ``submissions`` is rebuilt without the CHECK.
    """
    conn = db.conn
    conn.execute(
        """
        CREATE TABLE hash_types (
            name TEXT PRIMARY KEY,
            length INTEGER NOT NULL,
            submitted_as TEXT
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE submissions_new (
            case_number TEXT PRIMARY KEY,
            hash_type TEXT NOT NULL,
            hash BLOB NOT NULL,
            quality INTEGER,
            status TEXT NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'accepted', 'rejected')),
            received TEXT NOT NULL,
            reviewed TEXT,
            reviewer TEXT,
            list_id TEXT REFERENCES lists(id)
        )
        """
    )
    conn.execute("INSERT INTO submissions_new SELECT * FROM submissions")
    conn.execute("DROP TABLE submissions")
    conn.execute("ALTER TABLE submissions_new RENAME TO submissions")
    conn.execute("CREATE INDEX submissions_status ON submissions(status)")
    refuse = """
        WHEN NOT EXISTS (
            SELECT 1 FROM hash_types WHERE name = NEW.hash_type AND submitted_as IS NOT NULL
        )
        BEGIN
            SELECT RAISE(ABORT, 'submissions: not a hash type the public page takes');
        END
    """
    conn.execute(
        "CREATE TRIGGER submissions_insert_hash_type BEFORE INSERT ON submissions" + refuse
    )
    conn.execute(
        "CREATE TRIGGER submissions_update_hash_type BEFORE UPDATE OF hash_type ON submissions"
        + refuse
    )


@migrations()
def m005_node_changes(db: sqlite_utils.Database) -> None:
    """Enrolled nodes that can change: suspension, generations, and every key they had.

    ``node_keys`` holds each key a node has signed with and the first ``seq`` it
    signs (PROTOCOL.md §10.4.1); a key's period ends where the next one starts. It
    is filled with each node's one key, from seq 1. ``generation`` counts
    enrolments of the id (a revoked id enrolled again is generation 2);
    ``suspended`` is when the operator suspended the node (``NULL``: not).
    """
    db.executescript(
        """
        ALTER TABLE nodes ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE nodes ADD COLUMN suspended TEXT;
        CREATE TABLE node_keys (
            node TEXT NOT NULL REFERENCES nodes(id),
            first_seq INTEGER NOT NULL CHECK (first_seq >= 1),
            generation INTEGER NOT NULL,
            public_key TEXT NOT NULL,
            since TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (reason IN ('enrol', 're-key', 're-enrol')),
            PRIMARY KEY (node, first_seq)
        );
        INSERT INTO node_keys (node, first_seq, generation, public_key, since, reason)
            SELECT id, 1, 1, public_key, created, 'enrol' FROM nodes;
        """
    )


@migrations()
def m006_node_platforms(db: sqlite_utils.Database) -> None:
    """The platform each node serves, so a platform's replicas are counted together.

    Every node enrolled before is its own platform: ``platform`` is filled with its
    id, which keeps each one counted exactly as it was. ``nodes_platform``: a
    platform's nodes, read together.
    """
    db.executescript(
        """
        ALTER TABLE nodes ADD COLUMN platform TEXT NOT NULL DEFAULT '';
        UPDATE nodes SET platform = id;
        CREATE INDEX nodes_platform ON nodes(platform, id);
        """
    )


@migrations()
def m007_entries(db: sqlite_utils.Database) -> None:
    """Entries lists: the entries the operator staged and the records the hub published.

    - ``entry_items``: one row per entry id ever given (the primary key keeps an id
      from being given twice): its collection (the lists' ``label``), its metadata as
      last set, and when and why it was retracted (``NULL``: it stands).
    - ``entry_hashes``: the entry's hash in each list of its collection.
    - ``entry_pending``: the (list, entry) pairs whose record the next publish of
      the list makes match the entry (add, change or remove it).
    - ``entry_records``: every record a list published, its exact line, the version
      that added it and the one that removed it with the reason; the current ones
      (``removed_version IS NULL``) are the list's state, each hash and entry once.
    """
    db.executescript(
        """
        CREATE TABLE entry_items (
            id TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            category TEXT NOT NULL,
            classification TEXT NOT NULL,
            source TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            expires TEXT,
            retracted TEXT,
            retracted_at TEXT,
            who TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX entry_items_expires ON entry_items(expires)
            WHERE expires IS NOT NULL AND retracted IS NULL;
        CREATE TABLE entry_hashes (
            entry_id TEXT NOT NULL REFERENCES entry_items(id),
            list_id TEXT NOT NULL REFERENCES lists(id),
            hash BLOB NOT NULL,
            PRIMARY KEY (entry_id, list_id)
        );
        CREATE INDEX entry_hashes_list ON entry_hashes(list_id, hash);
        CREATE TABLE entry_pending (
            list_id TEXT NOT NULL REFERENCES lists(id),
            entry_id TEXT NOT NULL REFERENCES entry_items(id),
            PRIMARY KEY (list_id, entry_id)
        );
        CREATE TABLE entry_records (
            id INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL REFERENCES lists(id),
            entry_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            line BLOB NOT NULL,
            added_version INTEGER NOT NULL,
            removed_version INTEGER,
            reason TEXT
        );
        CREATE UNIQUE INDEX entry_records_hash ON entry_records(list_id, hash)
            WHERE removed_version IS NULL;
        CREATE UNIQUE INDEX entry_records_entry ON entry_records(list_id, entry_id)
            WHERE removed_version IS NULL;
        """
    )


@migrations()
def m008_case_withdrawal(db: sqlite_utils.Database) -> None:
    """What a case's withdrawal needs, in its ``submissions`` row.

    - ``withdrawal_code``: the SHA-256 of the withdrawal code shown once with the
      case number (the code itself is never stored;
      ``hub.services.cases.withdrawal_digest``); NULL for a case made before there
      were codes, which cannot be withdrawn.
    - ``entry_id``: the entry an acceptance into an ``entries`` list made. The
      published record never names the case; this column is the hub's only link.
    - ``withdrawal``: NULL, ``requested`` (waiting for an operator), ``withdrawn``
      or ``refused``; ``withdrawal_requested`` and ``withdrawal_decided`` the day of
      each step (a day, as ``received``, so no step lines up with an access log).

    Nothing here is about the person: a digest of a random code, an entry id, a
    state and two days.
    """
    db.executescript(
        """
        ALTER TABLE submissions ADD COLUMN withdrawal_code BLOB;
        ALTER TABLE submissions ADD COLUMN entry_id TEXT;
        ALTER TABLE submissions ADD COLUMN withdrawal TEXT
            CHECK (withdrawal IN ('requested', 'withdrawn', 'refused'));
        ALTER TABLE submissions ADD COLUMN withdrawal_requested TEXT;
        ALTER TABLE submissions ADD COLUMN withdrawal_decided TEXT;
        CREATE INDEX submissions_withdrawal ON submissions(withdrawal)
            WHERE withdrawal IS NOT NULL;
        """
    )


def sync_hash_types(db: sqlite_utils.Database) -> None:
    """Make ``hash_types`` the registry's types, writing only when they differ.

    Run on every open, so a hub started by a version that knows another set of
    types (one more, one fewer, one newly submittable) accepts exactly what that
    version's registry says, with no migration per type.
    """
    wanted = sorted((kind.name, kind.length, kind.submitted_as) for kind in HASH_TYPES.values())
    stored = sorted(
        tuple(row) for row in db.execute("SELECT name, length, submitted_as FROM hash_types")
    )
    if stored == wanted:
        return
    with db.atomic():
        db.execute("DELETE FROM hash_types")
        db.conn.executemany(
            "INSERT INTO hash_types (name, length, submitted_as) VALUES (?, ?, ?)", wanted
        )


def open_database(path: Path) -> ImmediateDatabase:
    """Open (creating if needed) the hub database in WAL mode and migrate it."""
    db = connect(path, timeout=BUSY_TIMEOUT)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    migrations.apply(db)
    sync_hash_types(db)
    return db


@migrations()
def m009_entry_records_by_hash(db: sqlite_utils.Database) -> None:
    """Every record a list of entries ever held, by hash: an ack's per-hash counters
    must name hashes the list held at or before the acked version
    (``hub.services.acks``), retracted ones included, which the partial index of
    m007 (records still held) does not reach."""
    db.executescript(
        """
        CREATE INDEX entry_records_by_hash ON entry_records(list_id, hash, added_version);
        """
    )


@migrations()
def m010_entry_opinions(db: sqlite_utils.Database) -> None:
    """Each platform's position on each entry, from the ``opinions`` of its nodes'
    acks (PROTOCOL.md §10.1; ``hub.services.acks``): the newest signed one (by the
    ack's ``sent``, then the node's ``seq``) across the platform's nodes and the
    entry's lists, with the ack that said it, so a count names its evidence."""
    db.executescript(
        """
        CREATE TABLE entry_opinions (
            entry_id TEXT NOT NULL,
            platform TEXT NOT NULL,
            position TEXT NOT NULL,
            reason TEXT,
            list_id TEXT NOT NULL,
            node TEXT NOT NULL,
            seq INTEGER NOT NULL,
            sent TEXT NOT NULL,
            PRIMARY KEY (entry_id, platform)
        );
        """
    )


@migrations()
def m011_disputes(db: sqlite_utils.Database) -> None:
    """Disputes of entries, and which acks carry opinions (PROTOCOL.md §10.7).

    - ``disputes``: one row per dispute of an entry (``hub.services.disputes``):
      ``open`` from when its disputing platforms reached the root's threshold,
      ``dismissed`` (the operator kept the entry), ``upheld`` (the entry retracted
      as ``disputed``), ``withdrawn`` (the disputes fell below the threshold) or
      ``ended`` (the entry was retracted for another reason);
      ``closed`` the time of the last decision or end, ``by`` the operator, ``note``
      the operator's own words, never published. At most one dispute of an entry
      is open or dismissed at a time (``disputes_live``).
    - ``opinion_nodes``: the platform each node's acks were folded into
      ``entry_opinions`` under, so a node that moved is seen and the fold redone
      (empty here: the acks stored before are folded again on the first read).
    - ``acks.with_opinions``: 1 when the ack's bytes carry ``opinions``, so the
      opinion summary of each version folds only those (``acks_with_opinions``)
      rather than parsing every ack ever stored; the acks stored before are
      parsed once here (one the protocol no longer reads is left unmarked: no
      summary could count it).
    """
    db.executescript(
        """
        CREATE TABLE disputes (
            id INTEGER PRIMARY KEY,
            entry_id TEXT NOT NULL,
            state TEXT NOT NULL
                CHECK (state IN ('open', 'dismissed', 'upheld', 'withdrawn', 'ended')),
            opened TEXT NOT NULL,
            closed TEXT,
            by TEXT,
            note TEXT
        );
        CREATE TABLE opinion_nodes (
            node TEXT PRIMARY KEY,
            platform TEXT NOT NULL
        );
        CREATE UNIQUE INDEX disputes_live ON disputes(entry_id)
            WHERE state IN ('open', 'dismissed');
        CREATE INDEX disputes_state ON disputes(state, id);
        ALTER TABLE acks ADD COLUMN with_opinions INTEGER NOT NULL DEFAULT 0;
        """
    )
    marked = [
        (ack_id,) for ack_id, data in db.execute("SELECT id, bytes FROM acks") if _opines(data)
    ]
    db.conn.executemany("UPDATE acks SET with_opinions = 1 WHERE id = ?", marked)
    db.execute("CREATE INDEX acks_with_opinions ON acks(node, seq) WHERE with_opinions = 1")


def _opines(data: bytes) -> bool:
    """Whether stored ack bytes carry ``opinions`` (m011's backfill)."""
    try:
        return bool(Ack.from_bytes(bytes(data)).opinions)
    except ProtocolError:
        return False


@migrations()
def m012_contributions(db: sqlite_utils.Database) -> None:
    """Members' contributions (PROTOCOL.md §10.8; ``hub.services.contributions``).

    Each one's exact bytes and sidecar (what an auditor checks the contributor by),
    its ``sent``, when the hub ``received`` it, the ``platform`` of its node then,
    and the review: ``status``, the ``entry_id`` an acceptance made, when it was
    ``decided``, by ``who``, and the operator's ``note``, never published. A node's
    last contribution ``seq`` is its highest row's: the key orders by it.
    """
    db.executescript(
        """
        CREATE TABLE contributions (
            node TEXT NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            sent TEXT NOT NULL,
            received TEXT NOT NULL,
            platform TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'accepted', 'rejected')),
            entry_id TEXT,
            decided TEXT,
            who TEXT,
            note TEXT,
            PRIMARY KEY (node, seq)
        );
        CREATE INDEX contributions_status ON contributions(status, node, seq);
        """
    )


@migrations()
def m013_contribution_policy(db: sqlite_utils.Database) -> None:
    """Accepting members' contributions by policy (``hub.services.contribution_policy``).

    - ``contribution_trust``: the platforms whose contributions are accepted on
      arrival, each into the collection of ``list_id``, for the ``categories`` in
      its JSON array (empty: every category), with who trusted it and ``since``.
    - ``contribution_hashes``: each stored contribution's hash of each type, so the
      contributions carrying one hash (a quorum of platforms) are found by an index
      rather than by parsing every stored document; filled here from those stored
      before.
    """
    db.executescript(
        """
        CREATE TABLE contribution_trust (
            platform TEXT PRIMARY KEY,
            list_id TEXT NOT NULL,
            categories TEXT NOT NULL DEFAULT '[]',
            who TEXT NOT NULL,
            since TEXT NOT NULL
        );
        CREATE TABLE contribution_hashes (
            node TEXT NOT NULL,
            seq INTEGER NOT NULL,
            hash_type TEXT NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY (node, seq, hash_type),
            FOREIGN KEY (node, seq) REFERENCES contributions(node, seq)
        );
        CREATE INDEX contribution_hashes_hash ON contribution_hashes(hash_type, hash);
        """
    )
    rows = [
        (node, seq, type_name, bytes.fromhex(given.hex))
        for node, seq, data in db.execute("SELECT node, seq, bytes FROM contributions")
        for type_name, given in Contribution.from_bytes(bytes(data)).hashes.items()
    ]
    db.conn.executemany(
        "INSERT INTO contribution_hashes (node, seq, hash_type, hash) VALUES (?, ?, ?, ?)", rows
    )


@migrations()
def m014_upstreams(db: sqlite_utils.Database) -> None:
    """Following upstream hubs (``hub.services.upstreams``, ``hub.services.upstream_store``).

    - ``upstream_follows``: how this hub follows each upstream its root declares: the
      node id the upstream enrolled this hub under and the upstream lists it follows
      (the key and token are files in ``upstreams/<name>/``, never rows);
    - ``upstream_selections``: which upstream list feeds which of this hub's entries
      lists, and which categories and classifications it takes (``[]``: all);
    - ``upstream_roots``, ``upstream_lists``, ``upstream_headers``, ``upstream_records``,
      ``upstream_evidence``: the follower's store of each upstream, as a node keeps
      its hub's (``follow.FollowerStore``): verified roots, each list's trust record,
      every verified header (the leaves an inclusion proof needs) and every record
      with the version that added it and the one that removed it;
    - ``upstream_origins``: which upstream record each re-published entry's record
      came from, read by the provenance of every version adding one (§7.5) and by
      the run that carries an upstream's retraction over.
    """
    db.executescript(
        """
        CREATE TABLE upstream_follows (
            name TEXT PRIMARY KEY,
            node_id TEXT NOT NULL,
            lists TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0,
            selections_changed INTEGER NOT NULL DEFAULT 1,
            created TEXT NOT NULL
        );
        CREATE TABLE upstream_selections (
            upstream TEXT NOT NULL,
            upstream_list TEXT NOT NULL,
            list_id TEXT NOT NULL,
            categories TEXT NOT NULL DEFAULT '[]',
            classifications TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (upstream, upstream_list, list_id)
        );
        CREATE TABLE upstream_roots (
            upstream TEXT NOT NULL,
            version INTEGER NOT NULL,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            PRIMARY KEY (upstream, version)
        );
        CREATE TABLE upstream_lists (
            upstream TEXT NOT NULL,
            list_id TEXT NOT NULL,
            hash_type TEXT NOT NULL,
            trust TEXT NOT NULL,
            applied TEXT,
            acked_version INTEGER NOT NULL DEFAULT 0,
            carried_version INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_failure TEXT,
            PRIMARY KEY (upstream, list_id)
        );
        CREATE TABLE upstream_headers (
            upstream TEXT NOT NULL,
            list_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            bytes BLOB NOT NULL,
            leaf BLOB NOT NULL,
            PRIMARY KEY (upstream, list_id, version)
        );
        CREATE TABLE upstream_records (
            upstream TEXT NOT NULL,
            list_id TEXT NOT NULL,
            entry_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            line BLOB NOT NULL,
            added_version INTEGER NOT NULL,
            removed_version INTEGER,
            reason TEXT
        );
        CREATE INDEX upstream_records_entry ON upstream_records(upstream, list_id, entry_id);
        CREATE INDEX upstream_records_added ON upstream_records(upstream, list_id, added_version);
        CREATE INDEX upstream_records_removed
            ON upstream_records(upstream, list_id, removed_version)
            WHERE removed_version IS NOT NULL;
        CREATE TABLE upstream_evidence (
            id INTEGER PRIMARY KEY,
            upstream TEXT NOT NULL,
            list_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            data BLOB,
            other BLOB,
            at TEXT NOT NULL
        );
        CREATE TABLE upstream_origins (
            entry_id TEXT NOT NULL,
            list_id TEXT NOT NULL,
            upstream TEXT NOT NULL,
            upstream_list TEXT NOT NULL,
            upstream_entry TEXT NOT NULL,
            line BLOB NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (entry_id, list_id)
        );
        CREATE INDEX upstream_origins_entry ON upstream_origins(upstream, upstream_entry);
        """
    )


@migrations()
def m015_exchanges(db: sqlite_utils.Database) -> None:
    """Taking entries from hash exchanges (``hub.services.exchanges``).

    - ``exchanges``: each exchange this hub reads (its API, base URL, the entries
      list each hash type goes into, the category and classification its entries
      get) and where the next fetch resumes (``checkpoint``, the API's own); the
      credentials are a file in ``exchanges/<name>/``, never a row;
    - ``exchange_records``: every record read there, by the exchange's own key, with
      its state (``active``, ``withdrawn``, ``deleted``) and the entry it made;
    - ``exchange_origins``: what the provenance of each version adding such an
      entry names (PROTOCOL.md §7.5, origin kind ``exchange``): the record as read
      and when it was fetched, per list the entry has a hash in.
    """
    db.executescript(
        """
        CREATE TABLE exchanges (
            name TEXT PRIMARY KEY,
            api TEXT NOT NULL,
            url TEXT NOT NULL,
            lists TEXT NOT NULL,
            category TEXT NOT NULL,
            classification TEXT NOT NULL,
            checkpoint TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL,
            last_fetch TEXT,
            last_error TEXT,
            last_failure TEXT
        );
        CREATE TABLE exchange_records (
            exchange TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            hashes TEXT NOT NULL,
            record TEXT NOT NULL,
            fetched TEXT NOT NULL,
            entry_id TEXT,
            PRIMARY KEY (exchange, key)
        );
        CREATE INDEX exchange_records_entry ON exchange_records(entry_id);
        CREATE TABLE exchange_origins (
            entry_id TEXT NOT NULL,
            list_id TEXT NOT NULL,
            exchange TEXT NOT NULL,
            api TEXT NOT NULL,
            hash TEXT NOT NULL,
            fetched TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (entry_id, list_id)
        );
        """
    )


@migrations()
def m016_frames(db: sqlite_utils.Database) -> None:
    """Videos' frames (``hub.services.frames``): the frames of every ``vpdq`` record
    the hub holds or may publish, by their SHA-256 — the record's hash, which names
    them (PROTOCOL.md §6.3). One row per video, whichever lists and entries carry it:
    the frames files a version publishes (``lists/<id>/frames/<hash>.bin``) are
    read from here."""
    db.executescript(
        """
        CREATE TABLE frames (
            hash BLOB PRIMARY KEY,
            data BLOB NOT NULL,
            count INTEGER NOT NULL,
            added TEXT NOT NULL
        );
        """
    )
