"""Requirement ids (``requirements/*.csv``) and the coverage report that traces them to checks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from conformance.framework import Suite


@dataclass(frozen=True)
class Requirement:
    id: str
    ig: str
    version: str
    url: str
    text: str
    actor: str


def load_requirements() -> dict[str, Requirement]:
    """Every requirement in the package's CSV files, by id."""
    found: dict[str, Requirement] = {}
    folder = resources.files("conformance") / "requirements"
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".csv"):
            continue
        for row in csv.DictReader(io.StringIO(entry.read_text(encoding="utf-8"))):
            requirement = Requirement(**{key: row[key] for key in Requirement.__dataclass_fields__})
            if requirement.id in found:
                raise ValueError(f"requirement id {requirement.id} is defined twice")
            found[requirement.id] = requirement
    return found


def rows_csv(rows: Iterable[Sequence[str]]) -> str:
    """Requirement rows (id, ig, version, url, text, actor) as the CSV ``requirements/*.csv`` holds."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(Requirement.__dataclass_fields__))
    writer.writerows(rows)
    return out.getvalue()


def coverage_csv(suites: Iterable[Suite]) -> str:
    """One row per requirement: the checks that exercise it, or 'not tested'."""
    by_requirement: dict[str, list[str]] = {}
    for suite in suites:
        for item in suite.checks:
            for requirement in item.requirements:
                by_requirement.setdefault(requirement, []).append(f"{suite.name}/{item.id}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["requirement", "ig", "version", "status", "checks"])
    for known in load_requirements().values():
        checks = by_requirement.get(known.id, [])
        status = "tested" if checks else "not tested"
        writer.writerow([known.id, known.ig, known.version, status, " ".join(checks)])
    return out.getvalue()
