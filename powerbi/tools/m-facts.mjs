// Facts about a section document, read from the syntax tree of Microsoft's parser
// (@microsoft/powerquery-parser), for tests/powerbi/test_connector_structure.py to assert on:
//   tableParams    every parameter declared `as table` and each reference to it: the function it is
//                  passed to, and whether that function reads only the schema (Table.ColumnNames,
//                  Value.Type) or the rows;
//   webContents    every Web.Contents call: the let binding that holds it and how that is used;
//   requestLists   every list built by calling a function that sends a POST (List.Transform,
//                  List.Generate, ...): its binding and whether every use goes through List.Buffer;
//   errorMessages  the message of every Error.Record: from resources.resx or the server's answer?
//   calls          how often each function is invoked.
//
//   node powerbi/tools/m-facts.mjs FILE.pq     (prints JSON)
import { readFileSync } from "node:fs";
import * as PQP from "@microsoft/powerquery-parser";

const SCHEMA_ONLY = new Set(["Table.ColumnNames", "Value.Type", "Table.Schema", "Type.TableSchema"]);
const LIST_WALKERS = new Set(["List.Transform", "List.Generate", "List.Accumulate", "List.Select",
  "List.TransformMany", "Table.AddColumn", "Table.TransformRows", "Table.FromList"]);

const elements = (wrapper) => (wrapper?.elements ?? []).map((csv) => csv.node ?? csv);
const name = (literal) => (literal.startsWith('#"') ? literal.slice(2, -1).replace(/""/g, '"') : literal);

function children(node) {
  const out = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === "tokenRange" || value === null || typeof value !== "object") continue;
    if (Array.isArray(value)) value.forEach((v) => v && typeof v === "object" && out.push(v));
    else out.push(value);
  }
  return out;
}
function walk(node, visit, ancestors = []) {
  visit(node, ancestors);
  const next = [...ancestors, node];
  for (const child of children(node)) walk(child, visit, next);
}
const line = (node) => (node.tokenRange?.positionStart?.lineNumber ?? -1) + 1;

// The function a node is invoked as (`F(...)` or `@F(...)`), if the node is such a call.
function calleeOf(node) {
  if (node.kind !== "RecursivePrimaryExpression" || node.head.kind !== "IdentifierExpression") return null;
  const first = elements(node.recursiveExpressions)[0];
  return first?.kind === "InvokeExpression" ? { name: name(node.head.identifier.literal), invoke: first } : null;
}
const argumentsOf = (call) => elements(call.invoke.content);

// Where a reference sits: the call it is a direct argument of, and at which position.
function directCall(ancestors) {
  // reference <- Csv <- ArrayWrapper <- InvokeExpression <- ArrayWrapper <- RecursivePrimaryExpression
  const [csv, wrapper, invoke, , primary] = [...ancestors].reverse();
  if (csv?.kind !== "Csv" || wrapper?.kind !== "ArrayWrapper" || invoke?.kind !== "InvokeExpression") return null;
  const call = primary && calleeOf(primary);
  if (!call || call.invoke !== invoke) return null;
  return { callee: call.name, arg: wrapper.elements.indexOf(csv) };
}
const enclosingCalls = (ancestors) => ancestors.map(calleeOf).filter(Boolean).map((c) => c.name);

// A call inside a function value runs only if that function is handed to a call (a callback such
// as List.Generate's); a function kept as a value (a navigation item) does not run here.
function runs(ancestors, root) {
  return ancestors.every((a, i) => !["FunctionExpression", "EachExpression"].includes(a.kind) || a === root ||
    (ancestors[i - 1]?.kind === "Csv" && ancestors[i - 2]?.kind === "ArrayWrapper" &&
      ancestors[i - 3]?.kind === "InvokeExpression"));
}

function references(scopeNode, identifier) {
  const refs = [];
  walk(scopeNode, (node, ancestors) => {
    if (node.kind === "IdentifierExpression" && name(node.identifier.literal) === identifier) {
      refs.push({ node, ancestors });
    }
  });
  return refs;
}

// The let binding whose value is exactly this node (`name = node`), and the let it belongs to.
function bindingOf(ancestors, node) {
  const pair = ancestors[ancestors.length - 1];
  if (pair?.kind !== "IdentifierPairedExpression" || pair.value !== node) return null;
  const scope = [...ancestors].reverse().find((a) => a.kind === "LetExpression");
  return scope ? { binding: name(pair.key.literal), scope } : null;
}

function analyse(path) {
  const text = readFileSync(path, "utf8");
  return PQP.TaskUtils.tryLexParse(PQP.DefaultSettings, text).then((task) => {
    if (PQP.TaskUtils.isError(task)) throw new Error(`syntax: ${task.error.message}`);
    const members = new Map();
    for (const member of elements(task.ast.sectionMembers)) {
      const pair = member.namePairedExpression;
      members.set(name(pair.key.literal), pair.value);
    }
    const facts = { tableParams: [], webContents: [], requestLists: [], errorMessages: [], calls: {} };

    // which members send a POST: always, or when a given parameter (the content) is not null
    const posts = new Map(); // member -> "always" | Set(param index)
    const paramsOf = (fn) => (fn.kind === "FunctionExpression" ? elements(fn.parameters.content)
      .map((p) => name(p.name.literal)) : []);
    const callPosts = (call, params) => {
      if (call.name === "Web.Contents") {
        let content = null;
        walk(call.invoke, (n) => {
          if (n.kind === "GeneralizedIdentifierPairedExpression" && n.key.literal === "Content") content = n.value;
        });
        if (!content) return null;
        if (content.kind === "IdentifierExpression" && params.includes(name(content.identifier.literal))) {
          return new Set([params.indexOf(name(content.identifier.literal))]);
        }
        return "always";
      }
      const target = posts.get(call.name);
      if (!target) return null;
      if (target === "always") return "always";
      const args = argumentsOf(call);
      let result = null;
      for (const i of target) {
        const arg = args[i];
        if (!arg || (arg.kind === "LiteralExpression" && arg.literalKind === "Null")) continue;
        if (arg.kind === "IdentifierExpression" && params.includes(name(arg.identifier.literal))) {
          if (result !== "always") result = new Set([...(result ?? []), params.indexOf(name(arg.identifier.literal))]);
        } else {
          result = "always";
        }
      }
      return result;
    };
    for (let changed = true; changed;) {
      changed = false;
      for (const [member, value] of members) {
        const params = paramsOf(value);
        let state = posts.get(member) ?? null;
        walk(value, (node, ancestors) => {
          const call = calleeOf(node);
          const found = call && runs(ancestors, value) && callPosts(call, params);
          if (!found || state === "always") return;
          state = found === "always" ? "always" : new Set([...(state ?? []), ...found]);
        });
        const before = posts.get(member);
        const same = before === state || (before instanceof Set && state instanceof Set &&
          before.size === state.size && [...state].every((x) => before.has(x)));
        if (!same) { posts.set(member, state); changed = true; }
      }
    }

    for (const [member, value] of members) {
      walk(value, (node, ancestors) => {
        const call = calleeOf(node);
        if (call) facts.calls[call.name] = (facts.calls[call.name] ?? 0) + 1;

        // table parameters and their references
        if (node.kind === "FunctionExpression") {
          for (const p of elements(node.parameters.content)) {
            const type = p.parameterType?.paired;
            const kind = type?.kind === "NullablePrimitiveType" ? type.paired.primitiveTypeKind : type?.primitiveTypeKind;
            if (kind !== "table") continue;
            const param = name(p.name.literal);
            facts.tableParams.push({
              member, param, line: line(node),
              refs: references(node.expression, param).map(({ node: ref, ancestors: up }) => {
                const direct = directCall(up);
                return { line: line(ref), callee: direct?.callee ?? null, arg: direct?.arg ?? null,
                  schemaOnly: Boolean(direct && SCHEMA_ONLY.has(direct.callee)) };
              }),
            });
          }
        }

        // Web.Contents: bound to a name, and how that name is used
        if (call?.name === "Web.Contents") {
          const bound = bindingOf(ancestors, node);
          facts.webContents.push({
            member, line: line(node), binding: bound?.binding ?? null,
            uses: bound ? references(bound.scope, bound.binding).map(({ node: ref, ancestors: up }) => ({
              line: line(ref), callee: directCall(up)?.callee ?? null })) : [],
          });
        }

        // lists whose items send a POST
        if (call && LIST_WALKERS.has(call.name)) {
          let sends = false;
          for (const arg of argumentsOf(call)) {
            walk(arg, (n, up) => {
              const inner = calleeOf(n);
              const found = inner && runs(up, arg) && callPosts(inner, []);
              if (found) sends = true;
            });
          }
          if (sends) {
            const bound = bindingOf(ancestors, node);
            const uses = bound ? references(bound.scope, bound.binding) : [{ node, ancestors }];
            facts.requestLists.push({
              member, line: line(node), fn: call.name, binding: bound?.binding ?? null,
              uses: uses.map(({ node: ref, ancestors: up }) => ({ line: line(ref),
                buffered: enclosingCalls(up).includes("List.Buffer") })),
            });
          }
        }

        // the messages users read
        if (call?.name === "Error.Record") {
          const message = argumentsOf(call)[1];
          const inside = [];
          const literals = [];
          if (message) {
            walk(message, (n) => {
              const c = calleeOf(n);
              if (c) inside.push(c.name);
              if (n.kind === "LiteralExpression" && n.literalKind === "Text") literals.push(JSON.parse(n.literal.replace(/""/g, '\\"')));
            });
          }
          facts.errorMessages.push({ member, line: line(node), calls: inside, literals });
        }
      });
    }
    facts.posts = Object.fromEntries([...posts].filter(([, v]) => v).map(([k, v]) => [k, v === "always" ? "always" : [...v]]));
    return facts;
  });
}

analyse(process.argv[2]).then((facts) => console.log(JSON.stringify(facts, null, 1)));
