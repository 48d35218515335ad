"""Figures a run produced (what a fuzz or a table sent, per kind), printed after the tests by conftest's
terminal summary: report output, not tests, so they add nothing to the count and cannot pass for checks."""

from __future__ import annotations

from collections.abc import Callable

# Title -> the lines to print; a producer with nothing to say (its tests did not run) returns none.
SUMMARIES: dict[str, Callable[[], list[str]]] = {}


def summary(title: str) -> Callable[[Callable[[], list[str]]], Callable[[], list[str]]]:
    """Register a function returning the lines to print under `title` at the end of the run."""

    def register(lines: Callable[[], list[str]]) -> Callable[[], list[str]]:
        SUMMARIES[title] = lines
        return lines

    return register
