// Executes PriorGate DTR prepopulation ELM with the cql-execution engine (the engine DTR SMART apps use).
// stdin:  {"cases": [{"id", "library", "bundle", "executionDateTime", "parameters"?}]}
// stdout: {"<id>": {"<define name>": <JSON-friendly value>, ...}, ...}
// Value sets come from the ValueSet-*.json files under ../content (their expansion, else compose concepts).
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const cql = require("cql-execution");
const cqlfhir = require("cql-exec-fhir");
const here = dirname(fileURLToPath(import.meta.url));
const contentRoot = join(here, "..", "content");

function walk(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

const files = walk(contentRoot);
const elmByName = {};
for (const path of files.filter((p) => p.endsWith(".elm.json"))) {
  const elm = JSON.parse(readFileSync(path, "utf8"));
  elmByName[elm.library.identifier.id] = elm;
}
const valueSets = {};
for (const path of files.filter((p) => /ValueSet-[^/]+\.json$/.test(p))) {
  const vs = JSON.parse(readFileSync(path, "utf8"));
  const codes = vs.expansion
    ? vs.expansion.contains.map((c) => ({ code: c.code, system: c.system, version: c.version }))
    : vs.compose.include.flatMap((inc) => (inc.concept || []).map((c) => ({ code: c.code, system: inc.system })));
  valueSets[vs.url] = { [vs.version]: codes };
}

function plain(value) {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map(plain);
  if (value.isDateTime || value.isDate) return value.toString();
  if (value.isQuantity) return { value: value.value, unit: value.unit };
  if (value.isCode) return { system: value.system, code: value.code, display: value.display ?? null };
  if (value.isConcept) return { codes: value.codes.map(plain), display: value.display ?? null };
  if (value._json !== undefined) return value._json;
  if (typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

const input = JSON.parse(readFileSync(0, "utf8"));
const repository = new cql.Repository(elmByName);
const codeService = new cql.CodeService(valueSets);
const output = {};
for (const c of input.cases) {
  const library = repository.resolve(c.library, elmByName[c.library].library.identifier.version);
  const executor = new cql.Executor(library, codeService, c.parameters || {});
  const source = cqlfhir.PatientSource.FHIRv401();
  source.loadBundles([c.bundle]);
  const results = await executor.exec(source, cql.DateTime.parse(c.executionDateTime));
  const [patientResults] = Object.values(results.patientResults);
  const row = {};
  for (const [name, value] of Object.entries(patientResults)) row[name] = plain(value);
  output[c.id] = row;
}
process.stdout.write(JSON.stringify(output));
