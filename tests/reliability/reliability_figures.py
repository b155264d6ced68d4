"""Figures the reliability suite produces, printed at the end of the run (and quoted in RELIABILITY.md)."""

from __future__ import annotations

FIGURES: list[tuple[str, str, dict[str, object]]] = []


def record(area: str, what: str, **figures: object) -> None:
    FIGURES.append((area, what, figures))
