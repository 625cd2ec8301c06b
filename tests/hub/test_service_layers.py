"""The hub's services stand in layers: each imports only the services below it.

docs/design.md §2.4 lists them in that order. A service that reached up (the ledger
asking the ack intake, say) would tie two owners of tables together both ways,
which is how the one class they replaced grew; and no service reaches out to the
edges that call it (the CLI, the HTTP app, the pages) or to ``hub.core``.
"""

from __future__ import annotations

from tests.test_import_contract import REPO, import_graph, project_modules

LAYERS = [
    "context",
    "files",
    "frames",
    "keys",
    "lists",
    "checkpoints",
    "entries",
    "roots",
    "disputes",
    "upstream_store",
    "origins",
    "publishing",
    "access",
    "sessions",
    "ledger",
    "evidence",
    "acks",
    "reports",
    "cases",
    "contribution_policy",
    "contributions",
    "upstreams",
    "exchanges",
]
"""The services, lowest first: the order ``Hub.__init__`` builds them in."""

EDGES = ("hub.core", "hub.app", "hub.api", "hub.cli", "hub.web", "hub.scheduler")


def _service_graph() -> dict[str, set[str]]:
    graph = import_graph(project_modules(REPO, ["hub"]))
    return {m: targets for m, targets in graph.items() if m.startswith("hub.services.")}


def test_every_service_module_has_a_layer() -> None:
    modules = {m.removeprefix("hub.services.") for m in _service_graph()}
    assert modules == set(LAYERS)


def test_each_service_imports_only_services_below_it() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in _service_graph().items()
        for target in targets
        if target.startswith("hub.services.")
        and LAYERS.index(target.removeprefix("hub.services."))
        >= LAYERS.index(module.removeprefix("hub.services."))
    ]
    assert upward == []


def test_no_service_imports_an_edge_or_the_hub() -> None:
    outward = [
        f"{module} -> {target}"
        for module, targets in _service_graph().items()
        for target in targets
        if target.startswith(EDGES)
    ]
    assert outward == []


def test_the_layers_are_read_from_real_imports() -> None:
    """Not vacuous: the ack intake does import the ledger and the evidence below it."""
    graph = _service_graph()
    assert {"hub.services.ledger", "hub.services.evidence"} <= graph["hub.services.acks"]
