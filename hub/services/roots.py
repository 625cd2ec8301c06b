"""Changes to what the root declares: a new list, a rotated role, a vocabulary term, an
upstream hub.

Each change is a new root version signed by the old and the new root role
(``Keys.publish_root``), stored with the table rows it implies and the checkpoints
it touches re-signed, in one transaction, and logged. A new per-list setting is a
field of ``protocol.ListSpec`` and an argument of ``create_list`` here.
"""

from __future__ import annotations

from hub.errors import Conflict, InvalidRequest, NotFound
from hub.services.checkpoints import Checkpoints
from hub.services.context import HubContext
from hub.services.entries import DEFAULT_VOCABULARY, Entries
from hub.services.keys import Keys
from hub.services.lists import Lists
from protocol import (
    GENESIS_PREV,
    HASH_TYPES,
    ListSpec,
    ProtocolError,
    Role,
    Root,
    Upstream,
    format_time,
)
from protocol.entries import LIST_FORMATS
from protocol.lists import validate_list_id
from protocol.root import ROLE_NAMES

__all__ = ["RootChanges"]


class RootChanges:
    """Declares lists and rotates keys, each in a new root version."""

    def __init__(self, ctx: HubContext, keys: Keys, lists: Lists, checkpoints: Checkpoints) -> None:
        self.ctx = ctx
        self.keys = keys
        self.lists = lists
        self.checkpoints = checkpoints

    def create_list(
        self,
        list_id: str,
        hash_type: str,
        *,
        max_distance: int | None = None,
        label: str = "",
        snapshot_every: int | None = None,
        public: bool = False,
        list_format: str = "hashes",
        who: str = "operator",
    ) -> Root:
        """Declare a new list in a new root version.

        An ``entries`` list needs a vocabulary in the root: a hub made without one
        gets the default (``DEFAULT_VOCABULARY``) in the same new root.
        """
        try:
            validate_list_id(list_id)
            if list_format not in LIST_FORMATS:
                raise InvalidRequest(
                    f"unknown list format {str(list_format)[:32]!r}; "
                    f"one of {', '.join(LIST_FORMATS)}"
                )
            kind = HASH_TYPES.get(hash_type)
            if kind is None:
                raise InvalidRequest(
                    f"unknown hash type {hash_type!r}; one of {sorted(HASH_TYPES)}"
                )
            spec = ListSpec(
                list_id,
                hash_type,
                kind.default_max_distance if max_distance is None else max_distance,
                label=label,
                snapshot_every=snapshot_every or self.ctx.config.snapshot_every,
                format="entries" if list_format == "entries" else "hashes",
            )
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
        old = self.keys.root()
        if list_id in old.lists:
            raise Conflict(f"list {list_id} already exists")
        changes: dict[str, object] = {"lists": {**old.lists, list_id: spec}}
        if spec.entries and old.vocabulary is None:
            changes["vocabulary"] = DEFAULT_VOCABULARY
        db = self.ctx.db
        with db.atomic():
            new = self.keys.publish_root(self.keys.next_root(**changes))
            db.table("lists").insert(
                {
                    "id": list_id,
                    "hash_type": hash_type,
                    "public": int(public),
                    "version": 0,
                    "compact": "[]",
                    "last_leaf": GENESIS_PREV,
                    "created": format_time(self.ctx.now()),
                }
            )
            # A declared list has a checkpoint from the start (PROTOCOL.md §11.1): size 0,
            # the empty tree. Without it, a copy that drops a list's checkpoint would look
            # like a list with nothing published yet, and hide the list from an auditor.
            self.checkpoints.refresh_one(list_id, self.checkpoints.publisher(new))
            detail = {"list": list_id, "type": hash_type, "root": new.version}
            if spec.entries:
                detail["format"] = spec.format
            self.ctx.log("list.create", who, detail)
        return new

    def add_term(self, group: str, term: str, who: str = "operator") -> Root:
        """Add ``term`` to the vocabulary's ``group`` in a new root version.

        Terms are never removed and the classification scale never reordered (a
        verifier refuses such a root), so a new classification is the most severe. A
        hub without a vocabulary gets the default with the term.
        """
        vocabulary = Entries.with_term(self.keys.root().vocabulary, group, term)
        with self.ctx.db.atomic():
            new = self.keys.publish_root(self.keys.next_root(vocabulary=vocabulary))
            self.ctx.log("vocabulary.add", who, {"group": group, "term": term, "root": new.version})
        return new

    def declare_upstream(
        self, name: str, url: str, root_sha256: str, who: str = "operator"
    ) -> Root:
        """Declare (or change) the upstream hub ``name`` in a new root version
        (PROTOCOL.md §5.6): the SHA-256 of the upstream root its follower pins, and the
        URL it publishes at. Signed by the root role, so whoever audits this hub learns
        the upstream's trust anchor from a signature.

        Raises:
            InvalidRequest: not a hub name, the hub itself, a pin that is not 64 hex
                digits, a URL that is not http(s).
            Conflict: ``name`` is already declared so.
        """
        upstream = Upstream(str(root_sha256).strip().lower(), str(url).rstrip("/") + "/")
        old = self.keys.root()
        if old.upstreams.get(name) == upstream:
            raise Conflict(f"upstream {name} is already declared so in root v{old.version}")
        try:
            Upstream.from_dict(str(name), upstream.to_dict())
            candidate = self.keys.next_root(upstreams={**old.upstreams, name: upstream})
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
        with self.ctx.db.atomic():
            new = self.keys.publish_root(candidate)
            detail = {"upstream": name, "url": upstream.url, "root": new.version}
            self.ctx.log("upstream.declare", who, detail | {"root_sha256": upstream.root_sha256})
        return new

    def drop_upstream(self, name: str, who: str = "operator") -> Root:
        """Stop declaring the upstream hub ``name``, in a new root version.

        Raises:
            NotFound: the newest root declares no such upstream.
        """
        old = self.keys.root()
        if name not in old.upstreams:
            raise NotFound(f"root v{old.version} declares no upstream {str(name)[:130]!r}")
        rest = {k: v for k, v in old.upstreams.items() if k != name}
        with self.ctx.db.atomic():
            new = self.keys.publish_root(self.keys.next_root(upstreams=rest))
            self.ctx.log("upstream.drop", who, {"upstream": name, "root": new.version})
        return new

    def rotate_key(self, role: str, who: str = "operator") -> Root:
        """Replace every key of ``role`` with one new key, in a new root version.

        A rotated ``delta`` role retires the old key from each list's next version on
        (``first_version``, PROTOCOL.md §12 item 7): nothing needs publishing for that,
        and every published version still verifies under the root it names. Every
        checkpoint is re-signed at once (with rotated ``checkpoint``/``timestamp`` keys
        if those rotated), so nodes that accept the new root accept the checkpoints.
        """
        if role not in ROLE_NAMES:
            raise InvalidRequest(f"unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}")
        old = self.keys.root()
        with self.ctx.db.atomic():
            count = len(old.roles[role].keyids) if role == "root" else 1
            new_keys = [self.keys.new_key(role) for _ in range(count)]
            keys = {k: v for k, v in old.keys.items() if k not in old.roles[role].keyids}
            keys.update({k.keyid: k.public for k in new_keys})
            roles = dict(old.roles)
            roles[role] = Role(tuple(k.keyid for k in new_keys), old.roles[role].threshold)
            new = self.keys.publish_root(self.keys.next_root(keys=keys, roles=roles))
            self.keys.retire(old.roles[role].keyids)
            self.checkpoints.refresh_all(new)
            self.ctx.log("key.rotate", who, {"role": role, "root_version": new.version})
        return new
