// Lint every Power Query (M) file of the project with Microsoft's own tooling: the parser
// (@microsoft/powerquery-parser) for syntax, then the language services
// (@microsoft/powerquery-language-services) for unknown identifiers, against the list of M library
// names the project keeps in m-library.json. Type and arity checks are left off (noisy).
//
//   node powerbi/tools/lint.mjs [files...]     (default: every .pq and .m under powerbi/)
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as PQP from "@microsoft/powerquery-parser";
import * as PQLS from "@microsoft/powerquery-language-services";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const names = JSON.parse(readFileSync(join(here, "m-library.json"), "utf8"));

function definition(label) {
  return {
    kind: PQLS.Library.LibraryDefinitionKind.Constant,
    label,
    description: "",
    completionItemKind: 21,
    asPowerQueryType: PQP.Language.Type.AnyInstance,
  };
}

const library = {
  externalTypeResolver: PQLS.ExternalType.noOpExternalTypeResolver,
  libraryDefinitions: {
    staticLibraryDefinitions: new Map(names.map((n) => [n, definition(n)])),
    dynamicLibraryDefinitions: () => new Map(),
  },
};

const inspectionSettings = {
  ...PQP.DefaultSettings,
  isWorkspaceCacheAllowed: false,
  library,
  eachScopeById: undefined,
  typeStrategy: PQLS.TypeStrategy.Primitive,
};

const validationSettings = PQLS.ValidationSettingsUtils.createValidationSettings(inspectionSettings, {
  cancellationToken: undefined,
  checkDiagnosticsOnParseError: false,
  checkForDuplicateIdentifiers: true,
  checkInvokeExpressions: false,
  checkUnknownIdentifiers: true,
  source: "scorebridge-lint",
});

const analysisSettings = {
  inspectionSettings,
  isWorkspaceCacheAllowed: false,
  initialCorrelationId: undefined,
  traceManager: PQP.Trace.NoOpTraceManagerInstance,
};

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules") return [];
    if (statSync(path).isDirectory()) return files(path);
    return /\.(pq|m)$/.test(name) ? [path] : [];
  });
}

async function lint(path) {
  const text = readFileSync(path, "utf8");
  const problems = [];
  const task = await PQP.TaskUtils.tryLexParse(PQP.DefaultSettings, text);
  if (PQP.TaskUtils.isError(task)) {
    const error = task.error;
    problems.push(`syntax: ${error.message ?? String(error)}`);
    return problems;
  }
  const result = await PQLS.validate(PQLS.textDocument(path, 1, text), analysisSettings,
    validationSettings);
  if (!PQP.ResultUtils.isOk(result)) {
    problems.push(`validation failed: ${result.error.message}`);
    return problems;
  }
  for (const d of result.value.diagnostics) {
    problems.push(`${d.range.start.line + 1}:${d.range.start.character + 1} ${d.message}`);
  }
  return problems;
}

const targets = process.argv.slice(2).length ? process.argv.slice(2).map((p) => resolve(p)) :
  files(root);
// the connector's own shared functions are library names for the queries that call them
for (const path of targets.filter((p) => p.endsWith(".pq"))) {
  for (const match of readFileSync(path, "utf8").matchAll(/^shared\s+([A-Za-z_][\w.]*)\s*=/gm)) {
    library.libraryDefinitions.staticLibraryDefinitions.set(match[1], definition(match[1]));
  }
}
let failed = 0;
for (const path of targets) {
  const problems = await lint(path);
  const name = relative(process.cwd(), path);
  if (problems.length) {
    failed += 1;
    console.log(`✗ ${name}`);
    problems.forEach((p) => console.log(`    ${p}`));
  } else {
    console.log(`✓ ${name}`);
  }
}
console.log(`${targets.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
