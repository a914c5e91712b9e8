"""Known IG defects: validator messages to drop, each with the profile, path and message it applies to.

Data lives in ``igs/suppressions.toml``; every entry carries a one-line reason.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from igs.validator import Finding


@dataclass(frozen=True)
class Suppression:
    """Drop an issue when the profile (glob on ``url|version``), path and message (regexes) all match."""

    profile: str
    path: re.Pattern[str]
    message: re.Pattern[str]
    reason: str

    def matches(self, profile: str, paths: Sequence[str], message: str) -> bool:
        if not fnmatchcase(profile, self.profile):
            return False
        if not self.message.search(message):
            return False
        return any(self.path.search(p) for p in paths) if paths else self.path.pattern in ("", ".*")


def load_suppressions(text: str | None = None) -> tuple[Suppression, ...]:
    """Parse the bundled ``suppressions.toml`` (or ``text``)."""
    if text is None:
        text = resources.files("igs").joinpath("suppressions.toml").read_text(encoding="utf-8")
    rows = tomllib.loads(text).get("suppression", [])
    return tuple(
        Suppression(
            row["profile"], re.compile(row.get("path", ".*")), re.compile(row["message"]), row["reason"]
        )
        for row in rows
    )


def apply_suppressions(findings: Iterable[Finding], suppressions: Sequence[Suppression]) -> list[Finding]:
    """The findings no suppression matches."""
    return [
        f
        for f in findings
        if not any(s.matches(f.profile, f.issue.expression, f.issue.diagnostics) for s in suppressions)
    ]
