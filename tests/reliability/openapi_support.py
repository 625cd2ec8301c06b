"""Drive schemathesis over a served OpenAPI document, one operation at a time.

The document fuzzed is the one the server itself serves at ``/openapi.yaml``: what
a client reads is what is held against the answers. Each operation is run as a
small Hypothesis test of its own (a fixed number of examples, derandomized, no
example database) so that a run is the same on every machine, and every failure
is collected with the operation, the credential, the generation mode and the
request that produced it, instead of stopping at the first.

The requests are blocking (schemathesis sends them with ``requests``), so the
fuzzing runs in a worker thread while the apps keep serving on the test's event
loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET, NotSet
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

Operation = APIOperation[Any, Any, Any, Any]
"""An operation of a loaded document."""

__all__ = [
    "DOCUMENT_CHECKS",
    "Finding",
    "FuzzRun",
    "Operation",
    "Plan",
    "load_document",
    "load_served_document",
    "operations_of",
]

DOCUMENT_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
"""Every answer: no 5xx, a documented status, a documented content type, a body and
headers that match the document."""

NEGATIVE_CHECKS = [*DOCUMENT_CHECKS, negative_data_rejection]
"""Invalid data besides: refused with a 4xx."""


_CONFIG = {
    # The credential of each request is the test's to choose (a plan's headers): left to
    # itself, schemathesis would make up bearer tokens, which are only ever wrong ones,
    # and in negative mode send a made-up one instead of the test's.
    "generation": {"with-security-parameters": False},
}


def load_served_document(base_url: str, headers: Mapping[str, str] | None = None) -> Any:
    """The schema the server at ``base_url`` serves at ``/openapi.yaml``.

    Read here rather than with ``schemathesis.openapi.from_url``, which leaves the
    document's own route out of the operations: ``GET /openapi.yaml`` is fuzzed too.
    """
    answer = requests.get(f"{base_url}/openapi.yaml", headers=dict(headers or {}), timeout=10)
    answer.raise_for_status()
    document = yaml.safe_load(answer.text)
    assert isinstance(document, dict), "the served document is not a YAML mapping"
    return load_document(document)


def load_document(document: dict[str, Any]) -> Any:
    """A schema from a parsed document (one the test has changed on purpose)."""
    return schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict(_CONFIG))


@dataclass(frozen=True)
class Plan:
    """One way of running an operation: a credential, a mode, fixed parts of the request."""

    credential: str  # a name for the report: "admin", "node", "none" …
    headers: Mapping[str, str]
    mode: GenerationMode
    path_parameters: Mapping[str, Any] | None = None
    body: Any = NOT_SET  # a fixed body (a valid one, so that the success answer is checked)
    media_type: str | None = None  # the fixed body's

    @property
    def checks(self) -> list[Any]:
        return NEGATIVE_CHECKS if self.mode is GenerationMode.NEGATIVE else DOCUMENT_CHECKS


@dataclass(frozen=True)
class Finding:
    """One failure: where, as whom, what was sent, and what schemathesis said."""

    operation: str
    credential: str
    mode: str
    request: str
    failure: str

    def __str__(self) -> str:
        return (
            f"{self.operation} as {self.credential} ({self.mode}): {self.request}\n"
            f"    {self.failure}"
        )


@dataclass
class FuzzRun:
    """A fuzzing run against one server, collecting findings and counting requests."""

    base_url: str
    max_examples: int
    findings: list[Finding] = field(default_factory=list)
    requests_sent: int = 0
    operations: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    nothing_to_negate: set[str] = field(default_factory=set)
    answers: dict[tuple[str, str, str], Counter[int]] = field(default_factory=dict)
    """Statuses by operation, credential and mode."""

    def run(self, operation: Operation, plans: Iterable[Plan]) -> None:
        """Run ``operation`` under each plan; failures are recorded, not raised."""
        for plan in plans:
            self._run_one(operation, plan)

    def _run_one(self, operation: Operation, plan: Plan) -> None:
        label = operation.label
        self.operations.add(label)
        session = requests.Session()
        strategy = operation.as_strategy(
            generation_mode=plan.mode,
            path_parameters=dict(plan.path_parameters) if plan.path_parameters else None,
            body=plan.body,
            media_type=plan.media_type,
        )
        seen: set[str] = set()
        answers = self.answers.setdefault((label, plan.credential, plan.mode.value), Counter())

        @hypothesis.settings(
            max_examples=self.max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=strategy)
        def test(case: Case[Any]) -> None:
            self.requests_sent += 1
            response = case.call(
                base_url=self.base_url, session=session, headers=dict(plan.headers), timeout=30
            )
            self.statuses[response.status_code] += 1
            answers[response.status_code] += 1
            try:
                case.validate_response(response, checks=plan.checks, headers=dict(plan.headers))
            except (Failure, FailureGroup) as failed:
                failures = failed.exceptions if isinstance(failed, FailureGroup) else (failed,)
                for failure in failures:
                    key = f"{failure.title}: {failure.message.partition(chr(10))[0]}"
                    if key in seen:
                        continue
                    seen.add(key)
                    self.findings.append(
                        Finding(
                            label,
                            plan.credential,
                            plan.mode.value,
                            _request_of(case),
                            _first_lines(f"{failure.title}: {failure.message}"),
                        )
                    )

        try:
            test()
        except hypothesis.errors.Unsatisfiable:
            # Nothing in the operation can be made invalid (no parameter, no body):
            # there is no negative case to send.
            if plan.mode is not GenerationMode.NEGATIVE:
                raise
            self.nothing_to_negate.add(label)
        finally:
            session.close()


def _request_of(case: Case[Any]) -> str:
    parts = [f"{case.method} {case.formatted_path}"]
    if case.query:
        parts.append(f"query={case.query!r}")
    if case.headers:
        shown = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
        if shown:
            parts.append(f"headers={shown!r}")
    if not isinstance(case.body, NotSet):
        body = repr(case.body)
        parts.append(f"body={body[:300]}")
    if case.media_type:
        parts.append(f"media_type={case.media_type}")
    return " ".join(parts)


def _first_lines(text: str, lines: int = 12) -> str:
    return "\n    ".join(text.strip().splitlines()[:lines])


def operations_of(schema: Any) -> list[Operation]:
    """Every operation of the document (an operation that does not load is an error)."""
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found
