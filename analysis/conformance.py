"""Contract conformance: every rule of ../shared/CONTRACT.md checked on what the campaign observed.

`conformance_rows(frames)` turns the stored tables (the polled `status_trace`, the `contract_probes`
answers, ...) into the `conformance` table: one row per rule with how often it could be checked, how
often it was broken and one example. It is pure, so a re-render of a stored run recomputes it.
"""

from __future__ import annotations

from pydantic import BaseModel


class ConformanceRule(BaseModel):
    """One rule of the contract as this run saw it (a row of `conformance.parquet`)."""

    rule: str  # what the contract promises, in words: "created_at stays as the 202 answer gave it"
    source: str  # observed (on the campaign's own traffic) | probe (a request made to check it)
    observations: int  # how many times it could be checked (0: not checked, say so)
    violations: int
    example: str | None  # one violation, in words, with its job id or request

    @property
    def checked(self) -> bool:
        return self.observations > 0

    @property
    def holds(self) -> bool:
        return self.checked and self.violations == 0
