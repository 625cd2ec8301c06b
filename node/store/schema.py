"""The node database's schema, as ``sqlite_utils`` migrations applied on every open.

Each migration runs once per file (``sqlite_utils`` records the applied ones by
name), so a node upgraded in place gains the newer tables and keeps its trust
records, outboxes and evidence; a migration, once released, is never edited.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

__all__ = ["migrations"]

migrations = Migrations("hashhub.node")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE roots (
            version INTEGER PRIMARY KEY,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL
        );
        CREATE TABLE lists (
            id TEXT PRIMARY KEY,
            hash_type TEXT NOT NULL,
            trust TEXT NOT NULL,
            state BLOB NOT NULL,
            count INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            applied TEXT,
            last_attempt TEXT,
            last_success TEXT,
            last_error TEXT
        );
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            bytes BLOB,
            other BLOB,
            created TEXT NOT NULL
        );
        CREATE TABLE match_events (
            id TEXT PRIMARY KEY,
            list_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            query BLOB NOT NULL,
            distance INTEGER NOT NULL,
            version INTEGER NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('upload', 'registry')),
            content_id TEXT,
            created TEXT NOT NULL,
            outcome TEXT,
            outcome_at TEXT
        );
        CREATE INDEX match_events_open ON match_events(outcome, created);
        CREATE TABLE counters (
            list_id TEXT NOT NULL,
            hash TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            value INTEGER NOT NULL,
            changed INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (list_id, hash, name)
        );
        CREATE TABLE ack_outbox (
            seq INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            last_error TEXT
        );
        CREATE TABLE acks_confirmed (
            seq INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            confirmed TEXT NOT NULL
        );
        CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            body BLOB NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            delivered TEXT,
            last_error TEXT
        );
        CREATE TABLE content (
            content_id TEXT NOT NULL,
            hash_type TEXT NOT NULL,
            hash BLOB NOT NULL,
            registered TEXT NOT NULL,
            PRIMARY KEY (hash_type, hash, content_id)
        ) WITHOUT ROWID;
        """
    )


@migrations()
def m002_state_changes(db: sqlite_utils.Database) -> None:
    """Net changes applied since the state blob was last written
    (``node.store.lists.ListTables.commit_update``)."""
    db.executescript(
        """
        CREATE TABLE state_changes (
            list_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            removes BLOB NOT NULL,
            adds BLOB NOT NULL,
            PRIMARY KEY (list_id, seq)
        );
        """
    )


@migrations()
def m003_content_by_id(db: sqlite_utils.Database) -> None:
    """Content looked up by its id: ``content`` rows to remove (``hashhub-node content
    remove``) and the match events of registered content (``MatchTables.content_events``),
    which a bulk import reads for every content id that matched. The primary key of
    ``content`` leads with the hash, so without these each is a full scan."""
    db.executescript(
        """
        CREATE INDEX content_by_id ON content(content_id);
        CREATE INDEX match_events_by_content ON match_events(content_id)
            WHERE content_id IS NOT NULL;
        """
    )


@migrations()
def m004_content_journal(db: sqlite_utils.Database) -> None:
    """The perceptual hashes registered since the content index last folded them in
    (``node.content_index``): one row per registering batch and type. AUTOINCREMENT, so
    that a ``seq`` is never given twice even after the rows a merge covered are deleted:
    an index generation says which entries it covers by the last ``seq``."""
    db.executescript(
        """
        CREATE TABLE content_journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            hash_type TEXT NOT NULL,
            count INTEGER NOT NULL,
            hashes BLOB NOT NULL
        );
        CREATE INDEX content_journal_by_type ON content_journal(hash_type, seq);
        """
    )


@migrations()
def m005_entries(db: sqlite_utils.Database) -> None:
    """Lists of the ``entries`` format: each list's ``format`` (its blob and logged
    changes hold record lines, ``node.store.records``), and the entry a match event
    matched, as JSON, so that it outlives the entry's retraction."""
    db.executescript(
        """
        ALTER TABLE lists ADD COLUMN format TEXT NOT NULL DEFAULT 'hashes';
        ALTER TABLE match_events ADD COLUMN entry TEXT;
        """
    )


@migrations()
def m006_policy(db: sqlite_utils.Database) -> None:
    """The platform's own policy over the lists (``node.policy``): exemptions (an
    allowlisted hash or entry, an entry disabled until a time), stricter per-list
    distances, quarantine holds, the decision each match event got, and a counter per
    decision. ``match_events_by_hash`` lets a match count its listed hash's recent
    events (the quarantine rule) without a scan of every event."""
    db.executescript(
        """
        CREATE TABLE policy_exemptions (
            kind TEXT NOT NULL CHECK (kind IN ('allow', 'disable')),
            target TEXT NOT NULL,
            by TEXT NOT NULL,
            why TEXT NOT NULL,
            at TEXT NOT NULL,
            until TEXT,
            PRIMARY KEY (kind, target)
        );
        CREATE TABLE policy_distances (
            list_id TEXT PRIMARY KEY,
            max_distance INTEGER NOT NULL,
            by TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE policy_holds (
            list_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            entry_id TEXT,
            held_at TEXT NOT NULL,
            last_hour INTEGER NOT NULL,
            week_average REAL NOT NULL,
            released_at TEXT,
            released_by TEXT,
            PRIMARY KEY (list_id, hash)
        );
        CREATE TABLE policy_decisions (
            match_id TEXT PRIMARY KEY,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE TABLE policy_counters (
            decision TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        );
        CREATE INDEX match_events_by_hash ON match_events(list_id, hash, created);
        """
    )


@migrations()
def m007_entry_records(db: sqlite_utils.Database) -> None:
    """An ``entries`` list's records also one row each, keyed by hash, for the lookup
    a match makes (``node.store.record_table``), and which state those rows hold. A
    node upgraded in place has no rows yet: its first lookup builds them from the
    stored state."""
    db.executescript(
        """
        CREATE TABLE entry_records (
            list_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            rest BLOB NOT NULL,
            PRIMARY KEY (list_id, hash)
        ) WITHOUT ROWID;
        CREATE TABLE entry_records_state (
            list_id TEXT PRIMARY KEY,
            trusted TEXT NOT NULL,
            count INTEGER NOT NULL,
            sha256 TEXT NOT NULL
        );
        """
    )


@migrations()
def m008_entry_opinions(db: sqlite_utils.Database) -> None:
    """The platform's position on each entry it matched (``MatchTables.set_opinion``):
    ``confirmed`` when a match of it was actioned or blocked, ``disputed`` when one
    was a false positive, with the reason. ``changed`` marks a position the next ack
    of the list carries (PROTOCOL.md §10.1, ``opinions``)."""
    db.executescript(
        """
        CREATE TABLE entry_opinions (
            list_id TEXT NOT NULL,
            entry TEXT NOT NULL,
            position TEXT NOT NULL,
            reason TEXT,
            at TEXT NOT NULL,
            changed INTEGER NOT NULL,
            PRIMARY KEY (list_id, entry)
        );
        """
    )


@migrations()
def m009_summary_opinions(db: sqlite_utils.Database) -> None:
    """What the hub's newest verified opinion summary of a list says of each entry
    (``node.store.opinions``), the platform's choice on disputed entries
    (``policy_settings``), and the matches its policy kept up, counted per list and
    reason for the acks (``policy_kept``: PROTOCOL.md §10.1 ``kept``). The counts
    start from the kept matches already recorded, so they stay cumulative."""
    db.executescript(
        """
        CREATE TABLE summary_opinions (
            list_id TEXT NOT NULL,
            entry TEXT NOT NULL,
            version INTEGER NOT NULL,
            confirmed INTEGER NOT NULL,
            disputed INTEGER NOT NULL,
            reasons TEXT NOT NULL,
            dispute TEXT CHECK (dispute IN ('open', 'dismissed')),
            PRIMARY KEY (list_id, entry)
        ) WITHOUT ROWID;
        CREATE TABLE policy_settings (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            by TEXT,
            at TEXT NOT NULL
        );
        CREATE TABLE policy_kept (
            list_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            value INTEGER NOT NULL,
            PRIMARY KEY (list_id, reason)
        );
        INSERT INTO policy_kept (list_id, reason, value)
            SELECT e.list_id, d.reason, count(*) FROM policy_decisions AS d
            JOIN match_events AS e ON e.id = d.match_id
            GROUP BY e.list_id, d.reason;
        """
    )


@migrations()
def m010_contributions(db: sqlite_utils.Database) -> None:
    """The platform's contributions to its hub (PROTOCOL.md §10.8;
    ``node.store.contributions``): each signed one's exact bytes and sidecar, kept
    from signing until the hub answers, so a retry sends the same bytes under the same
    ``seq``, and what the hub answered."""
    db.executescript(
        """
        CREATE TABLE contributions (
            seq INTEGER PRIMARY KEY,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            made TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'refused')),
            answer TEXT
        );
        """
    )


_BY_HUB = {
    "roots": """
        CREATE TABLE roots (
            hub TEXT NOT NULL DEFAULT 'default',
            version INTEGER NOT NULL,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            PRIMARY KEY (hub, version)
        )""",
    "lists": """
        CREATE TABLE lists (
            hub TEXT NOT NULL DEFAULT 'default',
            id TEXT NOT NULL,
            hash_type TEXT NOT NULL,
            trust TEXT NOT NULL,
            state BLOB NOT NULL,
            count INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            applied TEXT,
            last_attempt TEXT,
            last_success TEXT,
            last_error TEXT,
            format TEXT NOT NULL DEFAULT 'hashes',
            UNIQUE (hub, id)
        )""",
    "counters": """
        CREATE TABLE counters (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            hash TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            value INTEGER NOT NULL,
            changed INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (hub, list_id, hash, name)
        )""",
    "ack_outbox": """
        CREATE TABLE ack_outbox (
            hub TEXT NOT NULL DEFAULT 'default',
            seq INTEGER NOT NULL,
            list_id TEXT NOT NULL,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            last_error TEXT,
            PRIMARY KEY (hub, seq)
        )""",
    "acks_confirmed": """
        CREATE TABLE acks_confirmed (
            hub TEXT NOT NULL DEFAULT 'default',
            seq INTEGER NOT NULL,
            list_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            confirmed TEXT NOT NULL,
            PRIMARY KEY (hub, seq)
        )""",
    "state_changes": """
        CREATE TABLE state_changes (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            removes BLOB NOT NULL,
            adds BLOB NOT NULL,
            PRIMARY KEY (hub, list_id, seq)
        )""",
    "policy_distances": """
        CREATE TABLE policy_distances (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            max_distance INTEGER NOT NULL,
            by TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (hub, list_id)
        )""",
    "policy_holds": """
        CREATE TABLE policy_holds (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            entry_id TEXT,
            held_at TEXT NOT NULL,
            last_hour INTEGER NOT NULL,
            week_average REAL NOT NULL,
            released_at TEXT,
            released_by TEXT,
            PRIMARY KEY (hub, list_id, hash)
        )""",
    "policy_kept": """
        CREATE TABLE policy_kept (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            value INTEGER NOT NULL,
            PRIMARY KEY (hub, list_id, reason)
        )""",
    "entry_records": """
        CREATE TABLE entry_records (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            rest BLOB NOT NULL,
            PRIMARY KEY (hub, list_id, hash)
        ) WITHOUT ROWID""",
    "entry_records_state": """
        CREATE TABLE entry_records_state (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            trusted TEXT NOT NULL,
            count INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (hub, list_id)
        )""",
    "entry_opinions": """
        CREATE TABLE entry_opinions (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            entry TEXT NOT NULL,
            position TEXT NOT NULL,
            reason TEXT,
            at TEXT NOT NULL,
            changed INTEGER NOT NULL,
            PRIMARY KEY (hub, list_id, entry)
        )""",
    "summary_opinions": """
        CREATE TABLE summary_opinions (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            entry TEXT NOT NULL,
            version INTEGER NOT NULL,
            confirmed INTEGER NOT NULL,
            disputed INTEGER NOT NULL,
            reasons TEXT NOT NULL,
            dispute TEXT CHECK (dispute IN ('open', 'dismissed')),
            PRIMARY KEY (hub, list_id, entry)
        ) WITHOUT ROWID""",
    "contributions": """
        CREATE TABLE contributions (
            hub TEXT NOT NULL DEFAULT 'default',
            seq INTEGER NOT NULL,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            made TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'refused')),
            answer TEXT,
            PRIMARY KEY (hub, seq)
        )""",
}
"""The tables keyed by a list (or by a hub's ``seq``) as ``m011_hubs`` rebuilds them:
the hub first in each key."""


@migrations()
def m011_hubs(db: sqlite_utils.Database) -> None:
    """A node follows several hubs (ADR 20): a list is named by the pair (hub, list
    id), and roots, acks and contributions are numbered per hub. Every table keyed by
    a list or a hub's ``seq`` gains ``hub``, first in its key; the rows already there
    are the one hub a node followed before, ``default``. ``evidence`` and
    ``match_events`` only gain the column (their keys are their own). A table whose
    key changes is built again under its new key and its rows copied, since SQLite
    cannot change a primary key in place; ``lists`` keeps a rowid, which the blob reads
    of its state go by."""
    for table, create in _BY_HUB.items():
        columns = [c.name for c in db[table].columns]
        names = ", ".join(columns)
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_before_hubs")
        db.execute(create)
        # The names are the schema's own (the dictionary above and the old columns).
        db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}_before_hubs")  # noqa: S608
        db.execute(f"DROP TABLE {table}_before_hubs")
    db.executescript(
        """
        ALTER TABLE evidence ADD COLUMN hub TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE match_events ADD COLUMN hub TEXT NOT NULL DEFAULT 'default';
        DROP INDEX match_events_by_hash;
        CREATE INDEX match_events_by_hash ON match_events(hub, list_id, hash, created);
        """
    )


@migrations()
def m012_frames(db: sqlite_utils.Database) -> None:
    """The frames of each record of a ``vpdq`` list (PROTOCOL.md §6.3), by list and
    record hash, as the verified frames file holds them (``node.store.frames``): what
    the node matches videos by. A row lives exactly as long as its record stands."""
    db.executescript(
        """
        CREATE TABLE frames (
            hub TEXT NOT NULL DEFAULT 'default',
            list_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            frames BLOB NOT NULL,
            PRIMARY KEY (hub, list_id, hash)
        ) WITHOUT ROWID;
        """
    )


@migrations()
def m013_content_frames(db: sqlite_utils.Database) -> None:
    """Registered videos are kept by their frames (PROTOCOL.md §6.3), so that a
    ``vpdq`` list that grows finds the hosted videos its new entries match (§6.4).

    ``content_frames`` holds each registered video's frames once, by their SHA-256
    (the ``hash`` of its ``vpdq`` row in ``content``): two pieces of content that are
    one video share a row. A trigger drops the row when the last ``content`` row of
    that hash goes, whatever removed it, so frames never outlive their content.
    ``content_frames_generation`` counts every change, so that a process holding an
    index of the frames (``node.registry``) knows, by one read, whether it is stale.

    ``match_events.shares``: a video match's shares, ``[q, Q, l, L]`` as JSON (None
    for any other match): what decided it, since its distance says nothing."""
    db.executescript(
        """
        CREATE TABLE content_frames (
            hash BLOB PRIMARY KEY,
            frames BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE content_frames_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation INTEGER NOT NULL
        );
        INSERT INTO content_frames_generation (id, generation) VALUES (1, 0);
        CREATE TRIGGER content_frames_added AFTER INSERT ON content_frames BEGIN
            UPDATE content_frames_generation SET generation = generation + 1;
        END;
        CREATE TRIGGER content_frames_dropped AFTER DELETE ON content_frames BEGIN
            UPDATE content_frames_generation SET generation = generation + 1;
        END;
        CREATE TRIGGER content_frames_unregistered AFTER DELETE ON content
        WHEN old.hash_type = 'vpdq' AND NOT EXISTS (
            SELECT 1 FROM content WHERE hash_type = 'vpdq' AND hash = old.hash
        ) BEGIN
            DELETE FROM content_frames WHERE hash = old.hash;
        END;
        ALTER TABLE match_events ADD COLUMN shares TEXT;
        """
    )
