// Authoring-time CQL -> ELM JSON translation with the reference translator (npm @cqframework/cql).
// Every questionnaires/content/**/<Name>.cql is compiled to <Name>.elm.json beside it.
// Usage: node compile.mjs            (rewrite stale ELM)
//        node compile.mjs --check    (exit 1 when any committed ELM differs from a fresh translation)
import { readFileSync, writeFileSync, readdirSync, existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import {
  CqlTranslator,
  LibraryManager,
  ModelManager,
  createLibrarySourceProvider,
  createModelInfoProvider,
  createUcumService,
  stringAsSource,
} from "@cqframework/cql/cql-to-elm";
import { SystemModelInfoProvider } from "@cqframework/cql/cql";

const require = createRequire(import.meta.url);
const ucum = require("@lhncbc/ucum-lhc").UcumLhcUtils.getInstance();
const here = dirname(fileURLToPath(import.meta.url));
const contentRoot = join(here, "..", "content");
const fhirModelInfo = readFileSync(
  join(dirname(require.resolve("cql-exec-fhir")), "modelInfos", "fhir-modelinfo-4.0.1.xml"),
  "utf8",
);

function cqlFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...cqlFiles(path));
    else if (entry.name.endsWith(".cql")) out.push(path);
  }
  return out;
}

const files = cqlFiles(contentRoot);
const sourcesByName = new Map();
for (const path of files) {
  const text = readFileSync(path, "utf8");
  const match = /^\s*library\s+"?([A-Za-z0-9_]+)"?\s+version\s+'([^']+)'/m.exec(text);
  if (!match) throw new Error(`${path}: missing 'library <Name> version '<v>'' header`);
  sourcesByName.set(match[1], { path, text, version: match[2] });
}

function translator() {
  const modelManager = new ModelManager();
  modelManager.modelInfoLoader.registerModelInfoProvider(new SystemModelInfoProvider());
  modelManager.modelInfoLoader.registerModelInfoProvider(
    createModelInfoProvider((id, _system, version) =>
      id === "FHIR" && (version === null || version === undefined || version === "4.0.1")
        ? stringAsSource(fhirModelInfo)
        : null,
    ),
  );
  const ucumService = createUcumService(
    (value, from, to) => String(ucum.convertUnitTo(from, Number(value), to).toVal),
    (unit) => {
      const result = ucum.validateUnitString(unit, true);
      return result.status === "valid" ? null : `invalid UCUM unit ${unit}`;
    },
    (a, b) => a,
    (a, b) => a,
  );
  const libraryManager = new LibraryManager(modelManager, undefined, undefined, ucumService);
  libraryManager.librarySourceLoader.registerProvider(
    createLibrarySourceProvider((name, _system, _version) => {
      const found = sourcesByName.get(name);
      return found ? stringAsSource(found.text) : null;
    }),
  );
  return libraryManager;
}

const check = process.argv.includes("--check");
// One library manager for all sources: the model info is parsed and each include translated once.
const libraryManager = translator();
let failed = false;
for (const [name, { path, text }] of sourcesByName) {
  const result = CqlTranslator.fromText(text, libraryManager);
  const errors = result.errors.asJsArrayView ? result.errors.asJsArrayView() : Array.from(result.errors.toArray());
  if (errors.length > 0) {
    for (const e of errors) {
      const loc = e.locator;
      console.error(`${relative(contentRoot, path)}:${loc ? loc.toString() : "?"}: ${e.message}`);
    }
    failed = true;
    continue;
  }
  const elm = JSON.stringify(JSON.parse(result.toJson()), null, 1) + "\n";
  const target = path.replace(/\.cql$/, ".elm.json");
  const current = existsSync(target) ? readFileSync(target, "utf8") : null;
  if (current === elm) continue;
  if (check) {
    console.error(`${relative(contentRoot, target)} is stale: run 'make elm' and commit the result`);
    failed = true;
  } else {
    writeFileSync(target, elm);
    console.log(`wrote ${relative(contentRoot, target)}`);
  }
}
process.exit(failed ? 1 : 0);
