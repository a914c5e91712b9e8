"""Command-line entry points the ``priorgate`` command delegates to: ``igs list|install`` and ``validate``.

Both return a process exit code and never raise for bad input: 0 success, 1 validation errors or failed
installs, 2 usage errors or unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from igs.install import PACKAGE_REGISTRY, install
from igs.manifest import load_manifest
from igs.outcome import OperationOutcomeError, operation_outcome
from igs.registry import DEFAULT_CACHE, IG_PATH_ENV, load_registry
from igs.validator import Validator


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would sys.exit(2); we return 2 instead
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _ig_folder(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get(IG_PATH_ENV) or DEFAULT_CACHE)


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    """``igs list`` and ``igs install [--from DIR] [--to DIR] [--offline]``."""
    out = out or sys.stdout
    parser = _Parser(prog="priorgate igs", description="FHIR IG packages PriorGate validates against")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="show loaded packages and missing ones")
    listing.add_argument("--ig-path", help=f"package folder (default ${IG_PATH_ENV} or {DEFAULT_CACHE})")
    inst = sub.add_parser("install", help="install the supported packages")
    inst.add_argument("--from", dest="source", help="copy package .tgz files from this folder")
    inst.add_argument(
        "--to", dest="target", help=f"package folder (default ${IG_PATH_ENV} or {DEFAULT_CACHE})"
    )
    inst.add_argument("--offline", action="store_true", help="never contact the FHIR package registry")
    inst.add_argument("--registry", default=PACKAGE_REGISTRY, help="FHIR package registry base URL")
    try:
        args = parser.parse_args(list(argv))
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "list":
        return _list(_ig_folder(args.ig_path), out)
    return _install(args, out)


def _list(folder: Path, out: TextIO) -> int:
    registry = load_registry(folder)
    print(f"IG packages in {folder}:", file=out)
    for row in registry.describe():
        print(f"  {row['name']}#{row['version']:<12} {row['supported']:<10} {row['source']}", file=out)
    for warning in registry.warnings:
        print(f"{warning.severity}: {warning.message}", file=out)
    return 0


def _install(args: argparse.Namespace, out: TextIO) -> int:
    target = _ig_folder(args.target)
    fetch = None if args.offline else _http_fetch
    results = install(
        load_manifest(),
        target,
        source=Path(args.source) if args.source else None,
        fetch=fetch,
        registry_url=args.registry,
    )
    failed = 0
    for result in results:
        print(f"{result.status:<18} {result.package}  {result.detail}", file=out)
        failed += result.status in ("failed", "checksum-mismatch")
    return 1 if failed else 0


def _http_fetch(url: str) -> bytes:
    import httpx  # noqa: PLC0415 - only needed when installing online

    response = httpx.get(url, follow_redirects=True, timeout=60.0, headers={"Accept": "application/tar+gzip"})
    response.raise_for_status()
    return response.content


def validate_main(argv: Sequence[str], out: TextIO | None = None) -> int:
    """``validate FILE [--profile URL] [--package NAME#VERSION] [--json]``: exit 1 when there are errors."""
    out = out or sys.stdout
    parser = _Parser(prog="priorgate validate", description="validate a FHIR JSON resource against profiles")
    parser.add_argument("file", help="FHIR JSON resource (use - for stdin)")
    parser.add_argument("--profile", action="append", help="profile canonical (default: meta.profile)")
    parser.add_argument("--package", help="resolve profiles within this IG package first (name#version)")
    parser.add_argument("--ig-path", help=f"package folder (default ${IG_PATH_ENV} or {DEFAULT_CACHE})")
    parser.add_argument("--json", action="store_true", help="print the OperationOutcome as JSON")
    try:
        args = parser.parse_args(list(argv))
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        resource = orjson.loads(raw)
    except (OSError, orjson.JSONDecodeError) as exc:
        print(f"priorgate validate: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    registry = load_registry(_ig_folder(args.ig_path))
    package = None
    if args.package:
        name, _, version = args.package.partition("#")
        package = registry.find(name, version or None)
        if package is None:
            print(f"priorgate validate: IG package {args.package} is not installed", file=sys.stderr)
            return 2
    try:
        issues = Validator(registry, package=package).validate(resource, args.profile)
    except OperationOutcomeError as exc:
        print(f"priorgate validate: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        out.write(orjson.dumps(operation_outcome(issues), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for issue in issues:
            where = ", ".join(issue.expression) or "-"
            print(f"{issue.severity:<11} {where}: {issue.diagnostics}", file=out)
        errors = sum(i.severity in ("error", "fatal") for i in issues)
        print(f"{errors} error(s), {len(issues) - errors} other issue(s)", file=out)
    return 1 if any(i.severity in ("error", "fatal") for i in issues) else 0
