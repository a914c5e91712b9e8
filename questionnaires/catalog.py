"""The DTR content catalog: Questionnaires, CQL Libraries and ValueSets indexed by canonical|version.

Content lives in ``questionnaires/content/<topic>/``: ``Questionnaire-*.json``, ``ValueSet-*.json`` and
``<LibraryName>.cql`` with its translated ``<LibraryName>.elm.json`` (``make elm``). Library resources are
built here from those two files (DTR 2.0.1 §4.4.3: content carries both ``text/cql`` and
``application/elm+json``, base64, with ``depends-on`` related artifacts and data requirements), so the
CQL source stays the one thing authors edit. Everything is validated at load: a broken reference is a
startup failure, never a runtime surprise.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from igs.outcome import Failure, Issue, OperationOutcomeError
from questionnaires.canonicals import (
    ADAPT_SEARCH_QUESTIONNAIRE,
    BASE,
    CANDIDATE_EXPRESSION,
    CONTEXT_EXPRESSION,
    CQF_LIBRARY,
    INITIAL_EXPRESSION,
    LIBRARY_TYPE_SYSTEM,
    MIME_CQL,
    MIME_ELM_JSON,
    VARIABLE,
    DtrVersion,
    canonical_of,
    split_canonical,
)

CONTENT_ROOT = Path(__file__).parent / "content"
FHIR_MODEL_NS = "{http://hl7.org/fhir}"
# "Library".Definition (the form DTR clients split on '.'); a quoted definition name is accepted too.
_CQL_REFERENCE = re.compile(r'^"([A-Za-z0-9_]+)"\.(?:([A-Za-z_][A-Za-z0-9_]*)|"([^"]+)")$')
_EXPRESSION_EXTENSIONS = (INITIAL_EXPRESSION, CANDIDATE_EXPRESSION, CONTEXT_EXPRESSION, VARIABLE)

Key = tuple[str, str]  # (url, version)
Resource = dict[str, Any]


@dataclass(frozen=True)
class Catalog:
    """Loaded, validated DTR content. Resources are shared: callers copy before mutating."""

    questionnaires: Mapping[Key, Resource]
    libraries: Mapping[Key, Resource]
    valuesets: Mapping[Key, Resource]
    codesystems: Mapping[Key, Resource]  # PriorGate's own answer codes (served by read, not in packages)
    # Pre-rendered Questionnaires per DTR version (2.2.0 makes every reference version-specific).
    rendered: Mapping[tuple[DtrVersion, Key], Resource]
    library_keys_by_name: Mapping[tuple[str, str], Key]
    # (system, code) of an ordered service -> questionnaire keys (Questionnaire.useContext focus).
    focus: Mapping[tuple[str, str], tuple[Key, ...]]
    valueset_codes: Mapping[Key, tuple[Resource, ...]]
    library_closure: Mapping[Key, tuple[Key, ...]]  # questionnaire -> cqf-library + depends-on closure
    valueset_closure: Mapping[Key, tuple[Key, ...]]  # questionnaire -> answer + CQL value sets

    def resolve(self, table: Mapping[Key, Resource], canonical: str) -> Key | None:
        """`url|version` exactly, or the newest version of an unversioned `url`."""
        return _resolve(table, canonical)

    def questionnaire_key(self, canonical: str) -> Key | None:
        return self.resolve(self.questionnaires, canonical)

    def valueset_key(self, canonical: str) -> Key | None:
        return self.resolve(self.valuesets, canonical)

    def questionnaires_for_codes(self, codings: Iterable[tuple[str, str]]) -> list[Key]:
        found: list[Key] = []
        for coding in codings:
            for key in self.focus.get(coding, ()):
                if key not in found:
                    found.append(key)
        return found


def _resolve(table: Mapping[Key, Resource], canonical: str) -> Key | None:
    url, version = split_canonical(canonical)
    if version is not None:
        return (url, version) if (url, version) in table else None
    versions = [key for key in table if key[0] == url]
    return max(versions, key=lambda key: _version_tuple(key[1])) if versions else None


def _version_tuple(version: str) -> tuple[int | str, ...]:
    return tuple(int(part) if part.isdigit() else part for part in version.split("."))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _items(items: list[Resource]) -> Iterator[Resource]:
    for item in items:
        yield item
        yield from _items(item.get("item", []))


@dataclass(frozen=True)
class _ElmLibrary:
    name: str
    version: str
    cql: bytes
    elm: bytes
    tree: dict[str, Any]
    path: Path


def _read_elm(cql_path: Path, issues: list[Issue]) -> _ElmLibrary | None:
    elm_path = cql_path.with_name(cql_path.name.removesuffix(".cql") + ".elm.json")
    if not elm_path.is_file():
        issues.append(
            Issue(f"{cql_path.name} has no translated {elm_path.name}: run `make elm`", "not-found")
        )
        return None
    elm_bytes = elm_path.read_bytes()
    tree = orjson.loads(elm_bytes)["library"]
    identifier = tree["identifier"]
    errors = [a for a in tree.get("annotation", []) if a.get("type") == "CqlToElmError"]
    for error in errors:
        issues.append(Issue(f"{elm_path.name}: translator error {error.get('message')}", "invalid"))
    return _ElmLibrary(
        identifier["id"], identifier["version"], cql_path.read_bytes(), elm_bytes, tree, elm_path
    )


def _definitions(tree: dict[str, Any], section: str) -> list[dict[str, Any]]:
    return list(tree.get(section, {}).get("def", []))


def _data_requirements(tree: dict[str, Any]) -> list[Resource]:
    """Library.dataRequirement from the ELM retrieves (DTR clients fetch EHR data by these types)."""
    valuesets = {d["name"]: d["id"] for d in _definitions(tree, "valueSets")}
    systems = {d["name"]: d["id"] for d in _definitions(tree, "codeSystems")}
    codes = {d["name"]: (systems[d["codeSystem"]["name"]], d["id"]) for d in _definitions(tree, "codes")}
    out: list[Resource] = []
    for node in _walk(tree.get("statements", {})):
        if node.get("type") != "Retrieve" or not str(node.get("dataType", "")).startswith(FHIR_MODEL_NS):
            continue
        requirement: Resource = {"type": node["dataType"].removeprefix(FHIR_MODEL_NS)}
        path = node.get("codeProperty", "code")
        refs = [n for n in _walk(node.get("codes")) if n.get("type") in ("ValueSetRef", "CodeRef")]
        for ref in refs:
            if ref["type"] == "ValueSetRef" and ref["name"] in valuesets:
                requirement["codeFilter"] = [{"path": path, "valueSet": valuesets[ref["name"]]}]
            elif ref["type"] == "CodeRef" and ref["name"] in codes:
                system, code = codes[ref["name"]]
                requirement["codeFilter"] = [{"path": path, "code": [{"system": system, "code": code}]}]
        if requirement not in out:
            out.append(requirement)
    return out


def _library_resource(lib: _ElmLibrary, date: str) -> Resource:
    includes = [d for d in _definitions(lib.tree, "includes") if d.get("path") != "System"]
    resource: Resource = {
        "resourceType": "Library",
        "id": lib.name,
        "url": f"{BASE}/Library/{lib.name}",
        "version": lib.version,
        "name": lib.name,
        "title": lib.name,
        "status": "active",
        "type": {"coding": [{"system": LIBRARY_TYPE_SYSTEM, "code": "logic-library"}]},
        "date": date,
        "publisher": "PriorGate Demo Health Plan",
    }
    if includes:
        resource["relatedArtifact"] = [
            {"type": "depends-on", "resource": canonical_of(f"{BASE}/Library/{d['path']}", d["version"])}
            for d in includes
        ]
    requirements = _data_requirements(lib.tree)
    if requirements:
        resource["dataRequirement"] = requirements
    resource["content"] = [
        {"contentType": MIME_CQL, "data": _b64(lib.cql)},
        {"contentType": MIME_ELM_JSON, "data": _b64(lib.elm)},
    ]
    return resource


def _valueset_codes(valueset: Resource) -> tuple[Resource, ...]:
    out: list[Resource] = []
    for include in valueset.get("compose", {}).get("include", []):
        for concept in include.get("concept", []):
            entry: Resource = {"system": include["system"], "code": concept["code"]}
            if "display" in concept:
                entry["display"] = concept["display"]
            out.append(entry)
    return tuple(out)


def _versioned_questionnaire(
    questionnaire: Resource, libraries: Mapping[Key, Resource], valuesets: Mapping[Key, Resource]
) -> Resource:
    """A copy whose cqf-library and answerValueSet canonicals carry |version (DTR 2.2.0 oper-16)."""
    copy: Resource = orjson.loads(orjson.dumps(questionnaire))
    for ext in copy.get("extension", []):
        if ext["url"] == CQF_LIBRARY:
            key = _resolve(libraries, ext["valueCanonical"])
            if key is not None:
                ext["valueCanonical"] = canonical_of(*key)
    for item in _items(copy.get("item", [])):
        if "answerValueSet" in item:
            key = _resolve(valuesets, item["answerValueSet"])
            if key is not None:
                item["answerValueSet"] = canonical_of(*key)
    return copy


def _own_code_problems(valuesets: Mapping[Key, Resource], codesystems: Mapping[Key, Resource]) -> list[Issue]:
    """Codes our value sets take from our own code systems must exist there, with the same display."""
    displays: dict[str, dict[str, str]] = {}
    for (url, _), codesystem in codesystems.items():
        displays[url] = {c["code"]: c.get("display", "") for c in codesystem.get("concept", [])}
    issues: list[Issue] = []
    for valueset in valuesets.values():
        for include in valueset.get("compose", {}).get("include", []):
            if not include["system"].startswith(BASE):
                continue
            known = displays.get(include["system"])
            if known is None:
                issues.append(
                    Issue(f"ValueSet {valueset['id']}: code system {include['system']} is not loaded")
                )
                continue
            for concept in include.get("concept", []):
                if known.get(concept["code"]) != concept.get("display", known.get(concept["code"])):
                    issues.append(
                        Issue(
                            f"ValueSet {valueset['id']}: {concept['code']} does not match {include['system']}"
                        )
                    )
    return issues


def _item_problem(item: Resource) -> str | None:
    """DTR item rules checkable without a validator: item.text 1..1, dtrq-2 (a choice needs options or a
    value set), dtrq-3 (no quantity without units: we use decimals), sec-4 (nothing prepopulated from the
    EHR may be hidden or read-only)."""
    if not item.get("text"):
        return "has no text"
    if item["type"] in ("choice", "open-choice") and not ("answerOption" in item or "answerValueSet" in item):
        return "is a choice without answerOption or answerValueSet (dtrq-2)"
    if item["type"] == "quantity":
        return "is a quantity item; use a decimal with the unit in the text (dtrq-3)"
    prepopulated = any(e["url"] == INITIAL_EXPRESSION for e in item.get("extension", []))
    if prepopulated and item.get("readOnly"):
        return "is prepopulated from the EHR and read-only (sec-4)"
    return None


def load_catalog(root: Path | None = None) -> Catalog:
    """Load and validate all DTR content under `root` (default: the packaged `questionnaires/content`).

    Raises OperationOutcomeError(Failure.INTERNAL) listing every problem found: unparsable files, ELM
    missing or carrying translator errors, DTR item rules (see `_item_problem`), and any canonical
    (cqf-library, depends-on, answerValueSet, CQL value set, `"Library".Definition` expression) that
    does not resolve.
    """
    root = root or CONTENT_ROOT
    issues: list[Issue] = []
    questionnaires: dict[Key, Resource] = {}
    valuesets: dict[Key, Resource] = {}
    codesystems: dict[Key, Resource] = {}
    elm_libraries: list[_ElmLibrary] = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".cql":
            lib = _read_elm(path, issues)
            if lib is not None:
                elm_libraries.append(lib)
            continue
        if path.suffix != ".json" or path.name.endswith(".elm.json"):
            continue
        try:
            resource = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            issues.append(Issue(f"{path.relative_to(root)} is not valid JSON: {exc}", "structure"))
            continue
        kind = resource.get("resourceType")
        table = {"Questionnaire": questionnaires, "ValueSet": valuesets, "CodeSystem": codesystems}.get(kind)
        if table is None or "url" not in resource or "version" not in resource:
            issues.append(
                Issue(f"{path.relative_to(root)}: expected a canonical resource with url and version")
            )
            continue
        key = (resource["url"], resource["version"])
        if key in table:
            issues.append(
                Issue(f"{path.relative_to(root)}: duplicate canonical {canonical_of(*key)}", "duplicate")
            )
        table[key] = resource

    content_date = max((str(q.get("date", "")) for q in questionnaires.values()), default="")
    libraries: dict[Key, Resource] = {}
    by_name: dict[tuple[str, str], Key] = {}
    elm_by_key: dict[Key, _ElmLibrary] = {}
    for lib in elm_libraries:
        resource = _library_resource(lib, content_date)
        key = (resource["url"], resource["version"])
        if any(name == lib.name for name, _ in by_name):
            issues.append(
                Issue(f"Library name {lib.name} is not unique (DTR requires unique names)", "duplicate")
            )
        libraries[key] = resource
        by_name[(lib.name, lib.version)] = key
        elm_by_key[key] = lib

    dependency_keys: dict[Key, tuple[Key, ...]] = {}
    for key, resource in libraries.items():
        deps: list[Key] = []
        for artifact in resource.get("relatedArtifact", []):
            dep = _resolve(libraries, artifact["resource"])
            if dep is None:
                issues.append(
                    Issue(
                        f"Library {resource['name']} depends on unknown {artifact['resource']}", "not-found"
                    )
                )
            else:
                deps.append(dep)
        dependency_keys[key] = tuple(deps)
        for vs_def in _definitions(elm_by_key[key].tree, "valueSets"):
            if _resolve(valuesets, vs_def["id"]) is None:
                issues.append(
                    Issue(f"Library {resource['name']} uses unknown value set {vs_def['id']}", "not-found")
                )

    library_closure: dict[Key, tuple[Key, ...]] = {}
    valueset_closure: dict[Key, tuple[Key, ...]] = {}
    focus: dict[tuple[str, str], tuple[Key, ...]] = {}
    rendered: dict[tuple[DtrVersion, Key], Resource] = {}
    for key, questionnaire in questionnaires.items():
        label = f"Questionnaire {questionnaire.get('id')}"
        main: list[Key] = []
        for ext in questionnaire.get("extension", []):
            if ext["url"] == CQF_LIBRARY:
                lib_key = _resolve(libraries, ext["valueCanonical"])
                if lib_key is None:
                    issues.append(
                        Issue(f"{label}: cqf-library {ext['valueCanonical']} does not resolve", "not-found")
                    )
                else:
                    main.append(lib_key)
        closure: list[Key] = []
        pending = list(main)
        while pending:
            lib_key = pending.pop(0)
            if lib_key not in closure:
                closure.append(lib_key)
                pending.extend(dependency_keys.get(lib_key, ()))
        library_closure[key] = tuple(closure)
        main_names = {libraries[k]["name"]: k for k in main}

        vs_keys: list[Key] = []
        link_ids: set[str] = set()
        items = list(_items(questionnaire.get("item", [])))
        for item in items:
            if item["linkId"] in link_ids:
                issues.append(Issue(f"{label}: duplicate linkId {item['linkId']}", "duplicate"))
            link_ids.add(item["linkId"])
            if "answerValueSet" in item:
                vs_key = _resolve(valuesets, item["answerValueSet"])
                if vs_key is None:
                    issues.append(Issue(f"{label}: answerValueSet {item['answerValueSet']} does not resolve"))
                elif vs_key not in vs_keys:
                    vs_keys.append(vs_key)
        for item in items:
            problem = _item_problem(item)
            if problem:
                issues.append(Issue(f"{label}: item {item['linkId']} {problem}"))
            for condition in item.get("enableWhen", []):
                if condition["question"] not in link_ids:
                    issues.append(Issue(f"{label}: enableWhen names unknown item {condition['question']}"))
        for node in [questionnaire, *items]:
            for ext in node.get("extension", []):
                expression = ext.get("valueExpression")
                if ext["url"] not in _EXPRESSION_EXTENSIONS or expression is None:
                    continue
                if expression.get("language") != MIME_CQL:
                    issues.append(
                        Issue(f"{label}: {ext['url']} must be text/cql, got {expression.get('language')}")
                    )
                    continue
                match = _CQL_REFERENCE.match(expression["expression"])
                lib_key = main_names.get(match.group(1)) if match else None
                if match is None or lib_key is None:
                    issues.append(
                        Issue(f"{label}: {expression['expression']} names no cqf-library definition")
                    )
                    continue
                defines = {d["name"] for d in _definitions(elm_by_key[lib_key].tree, "statements")}
                define = match.group(2) or match.group(3)
                if define not in defines:
                    issues.append(Issue(f"{label}: {match.group(1)} has no definition {define!r}"))
        for lib_key in closure:
            for vs_def in _definitions(elm_by_key[lib_key].tree, "valueSets"):
                vs_key = _resolve(valuesets, vs_def["id"])
                if vs_key is not None and vs_key not in vs_keys:
                    vs_keys.append(vs_key)
        valueset_closure[key] = tuple(vs_keys)

        if not questionnaire.get("item") and questionnaire.get("meta", {}).get("profile") != [
            ADAPT_SEARCH_QUESTIONNAIRE
        ]:
            issues.append(Issue(f"{label}: a standard questionnaire needs items"))
        for context in questionnaire.get("useContext", []):
            if context.get("code", {}).get("code") != "focus":
                continue
            for coding in context.get("valueCodeableConcept", {}).get("coding", []):
                code_key = (coding["system"], coding["code"])
                focus[code_key] = (*focus.get(code_key, ()), key)

    issues.extend(_own_code_problems(valuesets, codesystems))
    if issues:
        raise OperationOutcomeError(Failure.INTERNAL, tuple(issues))
    # An adaptive form ships the value sets of its static twin up front (DTR spec-29/34 allow it).
    for key, questionnaire in questionnaires.items():
        if questionnaire.get("item"):
            continue
        shared = [
            k for k in valueset_closure if k != key and library_closure[k][:1] == library_closure[key][:1]
        ]
        merged = list(valueset_closure[key])
        for other in shared:
            merged.extend(vs for vs in valueset_closure[other] if vs not in merged)
        valueset_closure[key] = tuple(merged)

    for key, questionnaire in questionnaires.items():
        rendered[("2.0.1", key)] = questionnaire
        rendered[("2.2.0", key)] = _versioned_questionnaire(questionnaire, libraries, valuesets)
    return Catalog(
        questionnaires=questionnaires,
        libraries=libraries,
        valuesets=valuesets,
        codesystems=codesystems,
        rendered=rendered,
        library_keys_by_name=by_name,
        focus=focus,
        valueset_codes={key: _valueset_codes(vs) for key, vs in valuesets.items()},
        library_closure=library_closure,
        valueset_closure=valueset_closure,
    )
