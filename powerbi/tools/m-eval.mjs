// A test harness that runs the connector's own M code: Microsoft's parser
// (@microsoft/powerquery-parser) reads the section document and this file evaluates the subset of
// M the connector uses, with the library functions it calls. It is NOT Power Query: no folding, no
// firewall, no engine cache. Where Power Query gives no guarantee, it takes the pessimistic reading,
// so that code relying on luck fails here:
//   - a list or table that is not buffered is recomputed every time it is walked (List.Transform,
//     List.Generate, Table.AddColumn...), and List.Buffer / Table.Buffer walk it exactly once;
//   - a "source" table given by the caller can be unstable (a SQL query without ORDER BY): each walk
//     is a new query that may return the rows in another order, and every walk is counted;
//   - parameter and return types (`as text`, `as nullable number`, ...) are checked as M checks them.
// Web.Contents is answered by the caller over stdin/stdout, one JSON line each way, so the
// requests the M code builds go to the real server (tests/powerbi/m_harness.py drives it).
//
//   node powerbi/tools/m-eval.mjs SECTION.pq RESOURCES.resx   (then a JSON job on stdin)
import { readFileSync, readSync, writeSync } from "node:fs";
import * as PQP from "@microsoft/powerquery-parser";

// -- values -------------------------------------------------------------------------------------

class MError extends Error {
  constructor(reason, message, detail = null) {
    super(`${reason}: ${message}`);
    this.record = { Reason: reason, Message: message, Detail: detail };
  }
}
const fail = (message, reason = "Expression.Error", detail = null) => {
  throw new MError(reason, message, detail);
};

class Thunk {
  constructor(compute) { this.compute = compute; this.done = false; this.value = undefined; }
  force() {
    if (!this.done) {
      if (this.running) fail("A cyclic reference was encountered during evaluation.");
      this.running = true;
      try { this.value = this.compute(); this.done = true; } finally { this.running = false; }
    }
    return this.value;
  }
}
const force = (v) => (v instanceof Thunk ? v.force() : v);

class MList {
  // walk() returns a fresh array of values each time; buffered lists keep one array
  constructor(walk) { this.walk = walk; }
  static of(values) { const l = new MList(() => values); l.stable = values; return l; }
  items() { return this.stable ?? this.walk().map(force); }
}

class MRecord {
  constructor(entries) { this.fields = new Map(entries); } // name -> value or Thunk
  get(name) { return force(this.fields.get(name)); }
  has(name) { return this.fields.has(name); }
  names() { return [...this.fields.keys()]; }
  static from(obj) { return new MRecord(Object.entries(obj)); }
}

class MTable {
  // columns: [{name, type}], walk(): fresh array of rows (arrays of values)
  constructor(columns, walk, key = null) { this.columns = columns; this.walk = walk; this.key = key; }
  static of(columns, rows) { const t = new MTable(columns, () => rows); t.stable = rows; return t; }
  rows() { return this.stable ?? this.walk(); }
  names() { return this.columns.map((c) => c.name); }
  index(name) {
    const i = this.names().indexOf(name);
    if (i < 0) fail(`The column '${name}' of the table wasn't found.`, "Expression.Error", name);
    return i;
  }
  record(row) { return new MRecord(this.columns.map((c, i) => [c.name, row[i]])); }
}

class MFunction {
  constructor(params, call, name = "function") { this.params = params; this.call = call; this.name = name; }
}

class MBinary {
  constructor(read) { this.read = read; } // read() -> {bytes: Buffer, meta: MRecord}
}

class MType {
  constructor(kind, extra = {}) { Object.assign(this, { kind, nullable: false }, extra); }
  label() { return (this.nullable ? "nullable " : "") + (this.facet ?? this.kind); }
}
const T = (kind, extra) => new MType(kind, extra);
const nullable = (t) => Object.assign(Object.create(MType.prototype), t, { nullable: true });
const TYPES = {
  any: T("any"), anynonnull: T("anynonnull"), null: T("null"), logical: T("logical"),
  number: T("number"), text: T("text"), date: T("date"), datetime: T("datetime"),
  datetimezone: T("datetimezone"), duration: T("duration"), time: T("time"), binary: T("binary"),
  list: T("list"), record: T("record"), table: T("table"), function: T("function"), type: T("type"),
  none: T("none"),
};
const FACETS = {
  "Int64.Type": T("number", { facet: "Int64.Type", nullable: true }),
  "Int32.Type": T("number", { facet: "Int32.Type", nullable: true }),
  "Byte.Type": T("number", { facet: "Byte.Type", nullable: true }),
  "Currency.Type": T("number", { facet: "Currency.Type", nullable: true }),
  "Percentage.Type": T("number", { facet: "Percentage.Type", nullable: true }),
};

class MTemporal {
  constructor(kind, value) { this.kind = kind; this.value = value; } // value: ISO text or seconds
}

const metadata = new WeakMap();
const withMeta = (value, meta) => {
  if (value !== null && typeof value === "object") {
    const merged = new MRecord([...(metadata.get(value)?.fields ?? []), ...meta.fields]);
    metadata.set(value, merged);
  }
  return value;
};
const metaOf = (value) => (value !== null && typeof value === "object" && metadata.get(value)) ||
  new MRecord([]);

function kindOf(v) {
  if (v === null) return "null";
  if (typeof v === "boolean") return "logical";
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "text";
  if (v instanceof MList) return "list";
  if (v instanceof MRecord) return "record";
  if (v instanceof MTable) return "table";
  if (v instanceof MFunction) return "function";
  if (v instanceof MBinary) return "binary";
  if (v instanceof MType) return "type";
  if (v instanceof MTemporal) return v.kind;
  return "any";
}
const KIND_LABEL = { null: "Null", logical: "Logical", number: "Number", text: "Text", list: "List",
  record: "Record", table: "Table", function: "Function", binary: "Binary", type: "Type" };

function conforms(v, type) {
  if (!type || type.kind === "any") return true;
  if (v === null) return type.nullable || type.kind === "null";
  if (type.kind === "anynonnull") return true;
  if (type.kind === "number" && type.facet === "Int64.Type") return Number.isInteger(v);
  return kindOf(v) === type.kind;
}
function check(v, type, what) {
  if (!conforms(v, type)) {
    fail(`We cannot convert the value ${show(v)} to type ${type.label()}.`, "Expression.Error",
      { Value: show(v), Type: type.label(), Where: what });
  }
  return v;
}
function show(v) {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v !== "object") return String(v);
  return `[${KIND_LABEL[kindOf(v)] ?? kindOf(v)}]`;
}

function equal(a, b) {
  a = force(a); b = force(b);
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a === b;
  if (a instanceof MList && b instanceof MList) {
    const x = a.items(), y = b.items();
    return x.length === y.length && x.every((v, i) => equal(v, y[i]));
  }
  if (a instanceof MRecord && b instanceof MRecord) {
    const x = a.names(), y = b.names();
    return x.length === y.length && x.every((n) => b.has(n) && equal(a.get(n), b.get(n)));
  }
  if (a instanceof MTemporal && b instanceof MTemporal) return a.kind === b.kind && a.value === b.value;
  return a === b;
}
function compare(a, b) {
  if (a === null || b === null) return null;
  if (a instanceof MTemporal && b instanceof MTemporal) a = a.value, b = b.value;
  if (typeof a !== typeof b) fail(`We cannot compare ${show(a)} and ${show(b)}.`);
  return a < b ? -1 : a > b ? 1 : 0;
}

// -- evaluation ---------------------------------------------------------------------------------

class Scope {
  constructor(parent, entries = []) { this.parent = parent; this.vars = new Map(entries); }
  lookup(name) {
    for (let s = this; s; s = s.parent) if (s.vars.has(name)) return force(s.vars.get(name));
    fail(`The name '${name}' wasn't recognized.`);
  }
}

const elements = (wrapper) => (wrapper?.elements ?? []).map((csv) => csv.node ?? csv);
function unquote(literal) {
  if (literal.startsWith('#"')) return literal.slice(2, -1).replace(/""/g, '"');
  return literal;
}
function textLiteral(literal) {
  return literal.slice(1, -1).replace(/""/g, '"').replace(/#\(([^)]*)\)/g, (_, codes) =>
    codes.split(",").map((c) => ({ cr: "\r", lf: "\n", tab: "\t", "#": "#" }[c.trim()] ??
      String.fromCodePoint(parseInt(c, 16)))).join(""));
}

function evaluate(node, scope) {
  switch (node.kind) {
    case "LiteralExpression": return literal(node);
    case "IdentifierExpression": return scope.lookup(unquote(node.identifier.literal));
    case "ParenthesizedExpression": return evaluate(node.content, scope);
    case "ListExpression": {
      const items = elements(node.content).flatMap((n) => {
        if (n.kind !== "RangeExpression") return [new Thunk(() => evaluate(n, scope))];
        const lo = evaluate(n.left, scope), hi = evaluate(n.right, scope);
        return Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i);
      });
      return new MList(() => items);
    }
    case "RecordExpression":
      return new MRecord(elements(node.content).map((pair) =>
        [unquote(pair.key.literal), new Thunk(() => evaluate(pair.value, scope))]));
    case "LetExpression": {
      const inner = new Scope(scope);
      for (const pair of elements(node.variableList)) {
        inner.vars.set(unquote(pair.key.literal), new Thunk(() => evaluate(pair.value, inner)));
      }
      return evaluate(node.expression, inner);
    }
    case "IfExpression": {
      const condition = evaluate(node.condition, scope);
      if (typeof condition !== "boolean") fail(`We cannot convert the value ${show(condition)} to type Logical.`);
      return evaluate(condition ? node.trueExpression : node.falseExpression, scope);
    }
    case "FunctionExpression": return closure(node, scope);
    case "EachExpression":
      return new MFunction([{ name: "_" }], (args) =>
        evaluate(node.paired, new Scope(scope, [["_", args[0]]])), "each");
    case "ErrorRaisingExpression": {
      const value = evaluate(node.paired, scope);
      if (value instanceof MRecord) {
        throw new MError(value.has("Reason") ? value.get("Reason") : "Expression.Error",
          value.has("Message") ? value.get("Message") : "", value.has("Detail") ? value.get("Detail") : null);
      }
      fail(String(value));
    }
    // falls through (unreachable)
    case "ErrorHandlingExpression": {
      let value;
      try {
        value = evaluate(node.protectedExpression, scope);
      } catch (e) {
        if (!(e instanceof MError)) throw e;
        if (node.handler) {
          if (node.handler.kind === "OtherwiseExpression") return evaluate(node.handler.paired, scope);
          const handler = evaluate(node.handler.paired, scope);
          return invoke(handler, [MRecord.from(e.record)]);
        }
        return MRecord.from({ HasError: true, Error: MRecord.from(e.record) });
      }
      return node.handler ? value : MRecord.from({ HasError: false, Value: value });
    }
    case "RecursivePrimaryExpression": {
      let value = evaluate(node.head, scope);
      for (const step of elements(node.recursiveExpressions)) value = access(value, step, scope);
      return value;
    }
    case "FieldSelector": case "FieldProjection":
      return access(scope.lookup("_"), node, scope); // implicit `_` inside `each`
    case "InvokeExpression": fail("unexpected invocation");
    // falls through
    case "ArithmeticExpression": return arithmetic(node, scope);
    case "EqualityExpression": {
      const same = equal(evaluate(node.left, scope), evaluate(node.right, scope));
      return node.operatorConstant.constantKind === "=" ? same : !same;
    }
    case "RelationalExpression": {
      const c = compare(evaluate(node.left, scope), evaluate(node.right, scope));
      if (c === null) return null;
      return { "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0 }[node.operatorConstant.constantKind];
    }
    case "LogicalExpression": {
      const left = evaluate(node.left, scope);
      const op = node.operatorConstant.constantKind;
      if (op === "and" && left === false) return false;
      if (op === "or" && left === true) return true;
      const right = evaluate(node.right, scope);
      if (typeof left !== "boolean" || typeof right !== "boolean") {
        fail(`We cannot apply operator ${op} to types ${show(left)} and ${show(right)}.`);
      }
      return right;
    }
    case "UnaryExpression": {
      let value = evaluate(node.typeExpression, scope);
      for (const op of [...elements(node.operators)].reverse()) {
        const k = op.constantKind;
        if (k === "not") value = value === null ? null : !value;
        else if (k === "-") value = value === null ? null : -value;
      }
      return value;
    }
    case "NullCoalescingExpression": {
      const left = evaluate(node.left, scope);
      return left === null ? evaluate(node.right, scope) : left;
    }
    case "IsExpression": return conforms(evaluate(node.left, scope), typeOf(node.right, scope));
    case "AsExpression": return check(evaluate(node.left, scope), typeOf(node.right, scope), "as");
    case "MetadataExpression": {
      const value = evaluate(node.left, scope);
      const meta = evaluate(node.right, scope);
      return withMeta(value, meta);
    }
    case "TypePrimaryType": return typeOf(node.paired, scope);
    case "NotImplementedExpression": fail("Not implemented", "Expression.Error");
    // falls through
    default:
      throw new Error(`m-eval: unsupported syntax ${node.kind}`);
  }
}

function literal(node) {
  switch (node.literalKind) {
    case "Null": return null;
    case "Logical": return node.literal === "true";
    case "Numeric": return Number(node.literal);
    case "Text": return textLiteral(node.literal);
    default: throw new Error(`m-eval: literal ${node.literalKind}`);
  }
}

function arithmetic(node, scope) {
  const a = evaluate(node.left, scope), b = evaluate(node.right, scope);
  const op = node.operatorConstant.constantKind;
  if (a === null || b === null) return null;
  if (op === "&") {
    if (typeof a === "string" && typeof b === "string") return a + b;
    if (a instanceof MList && b instanceof MList) return new MList(() => [...a.items(), ...b.items()]);
    if (a instanceof MRecord && b instanceof MRecord) return new MRecord([...a.fields, ...b.fields]);
    fail(`We cannot apply operator & to types ${KIND_LABEL[kindOf(a)]} and ${KIND_LABEL[kindOf(b)]}.`);
  }
  if (typeof a !== "number" || typeof b !== "number") {
    fail(`We cannot apply operator ${op} to types ${KIND_LABEL[kindOf(a)]} and ${KIND_LABEL[kindOf(b)]}.`);
  }
  return { "+": a + b, "-": a - b, "*": a * b, "/": a / b }[op];
}

function access(value, step, scope) {
  const optional = Boolean(step.optionalConstant);
  switch (step.kind) {
    case "InvokeExpression":
      return invoke(value, elements(step.content).map((n) => new Thunk(() => evaluate(n, scope))));
    case "FieldSelector": {
      const name = unquote(step.content.literal);
      if (value instanceof MTable) return MList.of(value.rows().map((r) => r[value.index(name)]));
      if (!(value instanceof MRecord)) {
        fail(`We cannot apply field access to the type ${KIND_LABEL[kindOf(value)] ?? kindOf(value)}.`,
          "Expression.Error", { Value: show(value), Key: name });
      }
      if (!value.has(name)) {
        if (optional) return null;
        fail(`The field '${name}' of the record wasn't found.`, "Expression.Error", name);
      }
      return value.get(name);
    }
    case "FieldProjection": {
      const names = elements(step.content).map((s) => unquote(s.content.literal));
      return new MRecord(names.map((n) => [n, new Thunk(() => access(value, { kind: "FieldSelector",
        content: { literal: n }, optionalConstant: step.optionalConstant }, scope))]));
    }
    case "ItemAccessExpression": {
      const key = evaluate(step.content, scope);
      if (value instanceof MTable) {
        const rows = value.rows();
        let row;
        if (key instanceof MRecord) {
          const hits = rows.filter((r) => key.names().every((n) => equal(r[value.index(n)], key.get(n))));
          if (hits.length !== 1) {
            if (optional && hits.length === 0) return null;
            fail(hits.length ? "The key matched more than one row in the table." :
              "The key didn't match any rows in the table.");
          }
          row = hits[0];
        } else {
          row = rows[key];
          if (row === undefined) {
            if (optional) return null;
            fail("There weren't enough elements in the enumeration to complete the operation.");
          }
        }
        return value.record(row);
      }
      if (!(value instanceof MList)) fail(`We cannot apply operator {} to type ${KIND_LABEL[kindOf(value)]}.`);
      const items = value.items();
      if (key < 0 || key >= items.length) {
        if (optional) return null;
        fail("There weren't enough elements in the enumeration to complete the operation.");
      }
      return items[key];
    }
    default: throw new Error(`m-eval: unsupported access ${step.kind}`);
  }
}

function closure(node, scope) {
  const params = elements(node.parameters.content).map((p) => ({
    name: unquote(p.name.literal),
    optional: Boolean(p.optionalConstant),
    type: p.parameterType ? typeOf(p.parameterType.paired, scope, p.parameterType.maybeNullableConstant) : null,
  }));
  const returns = node.functionReturnType ? typeOf(node.functionReturnType.paired, scope,
    node.functionReturnType.maybeNullableConstant) : null;
  return new MFunction(params, (args) => {
    const inner = new Scope(scope);
    params.forEach((p, i) => {
      inner.vars.set(p.name, new Thunk(() => {
        const v = i < args.length ? force(args[i]) : null;
        return p.type ? check(v, p.optional ? nullable(p.type) : p.type, `parameter ${p.name}`) : v;
      }));
    });
    const result = evaluate(node.expression, inner);
    return returns ? check(result, returns, "return value") : result;
  });
}

function invoke(fn, args) {
  fn = force(fn);
  if (!(fn instanceof MFunction)) fail(`We cannot convert a value of type ${KIND_LABEL[kindOf(fn)]} to type Function.`);
  const required = fn.params.filter((p) => !p.optional).length;
  if (args.length < required || args.length > fn.params.length) {
    fail(`${fn.name}: ${args.length} arguments were passed to a function which expects ` +
      (required === fn.params.length ? `${required}.` : `between ${required} and ${fn.params.length}.`));
  }
  return fn.call(args);
}

function typeOf(node, scope, nullableConstant) {
  let type;
  switch (node.kind) {
    case "PrimitiveType": type = TYPES[node.primitiveTypeKind]; break;
    case "NullablePrimitiveType": case "NullableType":
      return nullable(typeOf(node.paired, scope));
    case "AsNullablePrimitiveType": case "AsType": return typeOf(node.paired, scope);
    case "TypePrimaryType": return typeOf(node.paired, scope);
    case "IdentifierExpression": case "RecursivePrimaryExpression": case "ParenthesizedExpression": {
      const value = evaluate(node, scope);
      if (!(value instanceof MType)) fail(`${show(value)} is not a type`);
      type = value; break;
    }
    case "MetadataExpression": return typeOf(node.left, scope);
    case "TableType": case "RecordType": {
      const list = node.kind === "TableType" ? node.rowType : node.fields;
      const fields = elements(list.content).map((f) => ({
        name: unquote(f.name.literal),
        type: f.fieldTypeSpecification ? typeOf(f.fieldTypeSpecification.fieldType, scope) : TYPES.any,
      }));
      type = T(node.kind === "TableType" ? "table" : "record", { fields });
      break;
    }
    case "FunctionType": type = TYPES.function; break;
    case "ListType": type = TYPES.list; break;
    default: throw new Error(`m-eval: unsupported type syntax ${node.kind}`);
  }
  return nullableConstant ? nullable(type) : type;
}

// -- the library the connector uses -------------------------------------------------------------

const lib = new Map();
const def = (name, arity, fn) => {
  const [required, total] = Array.isArray(arity) ? arity : [arity, arity];
  const params = Array.from({ length: total }, (_, i) => ({ name: `p${i}`, optional: i >= required }));
  lib.set(name, new MFunction(params, (args) => fn(...args.map(force)), name));
};
const call = (fn, ...args) => invoke(fn, args);
const list = (values) => MList.of(values);
const needList = (v, fn) => (v instanceof MList ? v.items() : fail(`${fn}: expected a list, got ${show(v)}`));
const needTable = (v, fn) => (v instanceof MTable ? v : fail(`${fn}: expected a table, got ${show(v)}`));
const text = (v) => {
  if (v === null) return null;
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (v instanceof MTemporal) return String(v.value);
  if (typeof v === "string") return v;
  fail(`We cannot convert a value of type ${KIND_LABEL[kindOf(v)]} to type Text.`);
};

// lists
def("List.Transform", 2, (l, f) => new MList(() => needList(l, "List.Transform").map((v) => call(f, v))));
def("List.Select", 2, (l, f) => new MList(() => needList(l, "List.Select").filter((v) => call(f, v) === true)));
def("List.Buffer", 1, (l) => list(needList(l, "List.Buffer")));
def("List.Combine", 1, (ls) => new MList(() => needList(ls, "List.Combine").flatMap((l) => needList(l, "List.Combine"))));
def("List.Count", 1, (l) => needList(l, "List.Count").length);
def("List.IsEmpty", 1, (l) => needList(l, "List.IsEmpty").length === 0);
def("List.First", [1, 2], (l, d = null) => needList(l, "List.First")[0] ?? d);
def("List.Last", [1, 2], (l, d = null) => { const x = needList(l, "List.Last"); return x.length ? x[x.length - 1] : d; });
def("List.FirstN", 2, (l, n) => new MList(() => needList(l, "List.FirstN").slice(0, n)));
def("List.Skip", [1, 2], (l, n = 1) => new MList(() => needList(l, "List.Skip").slice(n)));
def("List.Range", [2, 3], (l, o, n = null) => new MList(() => needList(l, "List.Range").slice(o, n === null ? undefined : o + n)));
def("List.Split", 2, (l, n) => new MList(() => {
  const x = needList(l, "List.Split"), out = [];
  for (let i = 0; i < x.length; i += n) out.push(list(x.slice(i, i + n)));
  return out;
}));
def("List.Positions", 1, (l) => new MList(() => needList(l, "List.Positions").map((_, i) => i)));
def("List.Repeat", 2, (l, n) => new MList(() => Array.from({ length: n }, () => needList(l, "List.Repeat")).flat()));
def("List.Contains", 2, (l, v) => needList(l, "List.Contains").some((x) => equal(x, v)));
def("List.Difference", 2, (a, b) => new MList(() => {
  const y = needList(b, "List.Difference");
  return needList(a, "List.Difference").filter((v) => !y.some((w) => equal(v, w)));
}));
def("List.Distinct", 1, (l) => new MList(() =>
  needList(l, "List.Distinct").filter((v, i, x) => x.findIndex((w) => equal(v, w)) === i)));
def("List.RemoveNulls", 1, (l) => new MList(() => needList(l, "List.RemoveNulls").filter((v) => v !== null)));
const extreme = (fn, better) => (l, d = null) => {
  const x = needList(l, fn).filter((v) => v !== null);
  return x.length ? x.reduce((a, b) => (better(compare(a, b)) ? a : b)) : d;
};
def("List.Max", [1, 2], extreme("List.Max", (c) => c >= 0));
def("List.Min", [1, 2], extreme("List.Min", (c) => c <= 0));
def("List.Sum", 1, (l) => needList(l, "List.Sum").reduce((a, b) => a + b, 0));
def("List.Zip", 1, (ls) => new MList(() => {
  const x = needList(ls, "List.Zip").map((l) => needList(l, "List.Zip"));
  const n = Math.max(0, ...x.map((l) => l.length));
  return Array.from({ length: n }, (_, i) => list(x.map((l) => l[i] ?? null)));
}));
def("List.Accumulate", 3, (l, seed, f) => needList(l, "List.Accumulate").reduce((s, v) => call(f, s, v), seed));
def("List.ReplaceRange", 4, (l, i, n, r) => {
  const x = needList(l, "List.ReplaceRange");
  if (typeof i !== "number" || i < 0 || i + n > x.length) fail("The index is outside the bounds of the list.");
  return list([...x.slice(0, i), ...needList(r, "List.ReplaceRange"), ...x.slice(i + n)]);
});
def("List.Generate", [3, 4], (initial, condition, next, selector = null) => new MList(() => {
  const out = [];
  for (let state = call(initial); call(condition, state) === true; state = call(next, state)) {
    out.push(selector ? call(selector, state) : state);
    if (out.length > 1e6) fail("List.Generate: runaway");
  }
  return out;
}));

// records
def("Record.Field", 2, (r, n) => { if (!r.has(n)) fail(`The field '${n}' of the record wasn't found.`); return r.get(n); });
def("Record.FieldOrDefault", [2, 3], (r, n, d = null) => (r instanceof MRecord ? (r.has(n) ? r.get(n) : d) :
  fail(`We cannot apply field access to the type ${KIND_LABEL[kindOf(r)]}.`)));
def("Record.HasFields", 2, (r, n) => (typeof n === "string" ? [n] : needList(n, "Record.HasFields")).every((x) => r.has(x)));
def("Record.FieldNames", 1, (r) => list(r.names()));
def("Record.FromList", 2, (values, names) => {
  const v = needList(values, "Record.FromList"), n = needList(names, "Record.FromList");
  if (v.length !== n.length) fail("Record.FromList: the number of values and names differ.");
  if (new Set(n).size !== n.length) fail("Record.FromList: duplicate field names.");
  return new MRecord(n.map((name, i) => [name, v[i]]));
});
def("Record.AddField", 3, (r, n, v) => { if (r.has(n)) fail(`The field '${n}' already exists in the record.`); return new MRecord([...r.fields, [n, v]]); });

// text and numbers
def("Text.From", [1, 2], (v) => text(v));
def("Text.Combine", [1, 2], (l, sep = "") => needList(l, "Text.Combine").filter((v) => v !== null).map(text).join(sep));
def("Text.Format", [2, 3], (f, args) => f.replace(/#\{(\d+|[A-Za-z_]\w*)\}/g, (_, k) => {
  const v = args instanceof MList ? args.items()[Number(k)] : args.get(k);
  return v === undefined ? fail(`Text.Format: no argument ${k}`) : text(v) ?? "";
}));
def("Text.Lower", [1, 2], (t) => (t === null ? null : t.toLowerCase()));
def("Text.StartsWith", [2, 3], (t, p) => t.startsWith(p));
def("Text.EndsWith", [2, 3], (t, p) => t.endsWith(p));
def("Text.Contains", [2, 3], (t, p) => t.includes(p));
def("Text.Start", 2, (t, n) => t.slice(0, n));
// the first occurrence only (no index argument); "" when a delimiter is not there
def("Text.AfterDelimiter", 2, (t, d) => { const i = t.indexOf(d); return i < 0 ? "" : t.slice(i + d.length); });
def("Text.BetweenDelimiters", 3, (t, a, b) => {
  const i = t.indexOf(a);
  if (i < 0) return "";
  const rest = t.slice(i + a.length), j = rest.indexOf(b);
  return j < 0 ? rest : rest.slice(0, j);
});
def("Number.From", [1, 2], (v) => {
  if (v === null || typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  const n = Number(String(v).trim());
  if (String(v).trim() === "" || Number.isNaN(n)) fail(`We couldn't convert to Number.`, "DataFormat.Error", v);
  return n;
});
def("Number.RoundUp", [1, 2], (n) => (n === null ? null : Math.ceil(n)));
def("Number.RoundDown", [1, 2], (n) => (n === null ? null : Math.floor(n)));
def("Number.Round", [1, 3], (n) => (n === null ? null : Math.round(n)));
def("Number.Mod", 2, (a, b) => a % b);
def("Logical.From", [1, 2], (v) => (v === null ? null : Boolean(v)));

// values, types, errors
def("Value.Metadata", 1, (v) => (v instanceof MBinary ? v.read().meta : metaOf(v)));
def("Value.ReplaceType", 2, (v, t) => { if (v instanceof MTable && t.fields) return new MTable(t.fields, () => v.rows()); return v; });
def("Value.Type", 1, (v) => (v instanceof MTable ? T("table", { fields: v.columns }) : TYPES[kindOf(v)] ?? TYPES.any));
def("Value.Is", 2, (v, t) => conforms(v, t));
def("Type.AddTableKey", 3, (t) => t);
def("Type.Is", 2, (a, b) => b.kind === "any" || a.kind === b.kind);
def("Error.Record", [1, 3], (reason, message = null, detail = null) =>
  MRecord.from({ Reason: reason, Message: message, Detail: detail }));
def("Function.InvokeAfter", 2, (f, delay) => { harness.delays.push(delay.value); return call(f); });
def("Diagnostics.Trace", [3, 4], (_l, _m, v) => (v instanceof MFunction ? call(v) : v));
const duration = (d, h, m, s) => new MTemporal("duration", ((d * 24 + h) * 60 + m) * 60 + s);
def("#duration", 4, duration);
def("#date", 3, (y, m, d) => new MTemporal("date", `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`));
def("DateTimeZone.FromText", [1, 2], (t) => (t === null ? null : new MTemporal("datetimezone", t)));
def("Date.From", [1, 2], (t) => (t === null ? null : new MTemporal("date", String(t.value ?? t).slice(0, 10))));
lib.set("JoinKind.LeftOuter", 1);
lib.set("JoinKind.Inner", 0);
lib.set("Order.Ascending", 0);
lib.set("Order.Descending", 1);
for (const [name, type] of Object.entries(FACETS)) lib.set(name, type);

// tables
const typed = (t) => (t instanceof MType ? t : TYPES.any);
def("#table", 2, (columns, rows) => {
  const cols = columns instanceof MType ? columns.fields.map((f) => ({ name: f.name, type: f.type })) :
    needList(columns, "#table").map((name) => ({ name, type: TYPES.any }));
  return new MTable(cols, () => needList(rows, "#table").map((r) => {
    const values = needList(r, "#table");
    if (values.length !== cols.length) fail("#table: a row has the wrong number of values.");
    return values;
  }));
});
def("Table.Buffer", [1, 2], (t) => MTable.of(needTable(t, "Table.Buffer").columns, t.rows().map((r) => r.map(force))));
def("Table.ColumnNames", 1, (t) => list(needTable(t, "Table.ColumnNames").names()));
def("Table.RowCount", 1, (t) => needTable(t, "Table.RowCount").rows().length);
def("Table.ToRecords", 1, (t) => new MList(() => needTable(t, "Table.ToRecords").rows().map((r) => t.record(r))));
def("Table.ToRows", 1, (t) => new MList(() => needTable(t, "Table.ToRows").rows().map((r) => list([...r]))));
def("Table.ToColumns", 1, (t) => new MList(() => {
  const rows = needTable(t, "Table.ToColumns").rows();
  return t.columns.map((_, i) => list(rows.map((r) => r[i])));
}));
def("Table.FromColumns", [1, 2], (columns, names = null) => {
  const cols = needList(columns, "Table.FromColumns").map((c) => needList(c, "Table.FromColumns"));
  const labels = names instanceof MList ? names.items() : cols.map((_, i) => `Column${i + 1}`);
  if (new Set(labels).size !== labels.length) fail("Table.FromColumns: duplicate column names.", "Expression.Error", list(labels));
  const n = Math.max(0, ...cols.map((c) => c.length));
  return MTable.of(labels.map((name) => ({ name, type: TYPES.any })),
    Array.from({ length: n }, (_, i) => cols.map((c) => c[i] ?? null)));
});
def("Table.FromRecords", [1, 3], (records, columns = null) => {
  const recs = needList(records, "Table.FromRecords");
  const cols = columns instanceof MType ? columns.fields :
    (columns instanceof MList ? columns.items() : (recs[0]?.names() ?? [])).map((name) => ({ name, type: TYPES.any }));
  return new MTable(cols, () => recs.map((r) => cols.map((c) => r.get(c.name))));
});
def("Table.SelectColumns", [2, 3], (t, names) => {
  needTable(t, "Table.SelectColumns");
  const wanted = typeof names === "string" ? [names] : needList(names, "Table.SelectColumns");
  const idx = wanted.map((n) => t.index(n));
  return new MTable(idx.map((i) => t.columns[i]), () => t.rows().map((r) => idx.map((i) => r[i])));
});
def("Table.RemoveColumns", [2, 3], (t, names) => {
  needTable(t, "Table.RemoveColumns");
  const drop = new Set((typeof names === "string" ? [names] : needList(names, "Table.RemoveColumns")).map((n) => t.index(n)));
  const keep = t.columns.map((_, i) => i).filter((i) => !drop.has(i));
  return new MTable(keep.map((i) => t.columns[i]), () => t.rows().map((r) => keep.map((i) => r[i])));
});
def("Table.AddColumn", [3, 4], (t, name, f, type = null) => {
  needTable(t, "Table.AddColumn");
  if (t.names().includes(name)) fail(`The field '${name}' already exists in the record.`, "Expression.Error", name);
  return new MTable([...t.columns, { name, type: typed(type) }], () =>
    t.rows().map((r) => [...r, call(f, t.record(r))]));
});
def("Table.AddIndexColumn", [2, 5], (t, name, start = 0, step = 1, type = null) => {
  needTable(t, "Table.AddIndexColumn");
  if (t.names().includes(name)) fail(`The field '${name}' already exists in the record.`);
  return new MTable([...t.columns, { name, type: type instanceof MType ? type : TYPES.number }], () =>
    t.rows().map((r, i) => [...r, start + i * step]));
});
def("Table.TransformColumnTypes", [2, 3], (t, changes) => {
  needTable(t, "Table.TransformColumnTypes");
  const pairs = needList(changes, "Table.TransformColumnTypes").map((p) => needList(p, "Table.TransformColumnTypes"));
  const cols = t.columns.map((c) => ({ ...c }));
  for (const [name, type] of pairs) cols[t.index(name)].type = type;
  return new MTable(cols, () => t.rows());
});
def("Table.Sort", 2, (t, order) => {
  needTable(t, "Table.Sort");
  const keys = needList(order, "Table.Sort").map((k) => (typeof k === "string" ? [k, 0] : needList(k, "Table.Sort")));
  return new MTable(t.columns, () => [...t.rows()].sort((a, b) => {
    for (const [name, dir] of keys) {
      const c = compare(a[t.index(name)], b[t.index(name)]) ?? 0;
      if (c) return dir ? -c : c;
    }
    return 0;
  }));
});
def("Table.NestedJoin", [6, 8], (left, lkeys, right, rkeys, name, kind = 1) => {
  needTable(left, "Table.NestedJoin"); needTable(right, "Table.NestedJoin");
  const lk = (typeof lkeys === "string" ? [lkeys] : lkeys.items()).map((n) => left.index(n));
  const rk = (typeof rkeys === "string" ? [rkeys] : rkeys.items()).map((n) => right.index(n));
  if (left.names().includes(name)) fail(`The field '${name}' already exists in the record.`);
  return new MTable([...left.columns, { name, type: TYPES.table }], () => {
    const groups = new Map();
    for (const r of right.rows()) {
      const key = JSON.stringify(rk.map((i) => force(r[i])));
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(r);
    }
    return left.rows().flatMap((r) => {
      const hits = groups.get(JSON.stringify(lk.map((i) => force(r[i])))) ?? [];
      if (kind === 0 && !hits.length) return [];
      return [[...r, MTable.of(right.columns, hits)]];
    });
  });
});
def("Table.First", [1, 2], (t, d = null) => { const rows = needTable(t, "Table.First").rows(); return rows.length ? t.record(rows[0]) : d; });
def("Table.Column", 2, (t, name) => list(needTable(t, "Table.Column").rows().map((r) => r[t.index(name)])));
def("Table.IsEmpty", 1, (t) => needTable(t, "Table.IsEmpty").rows().length === 0);

// binaries, JSON, URIs
const toJson = (v) => {
  v = force(v);
  if (v === null || typeof v !== "object") return v;
  if (v instanceof MList) return v.items().map(toJson);
  if (v instanceof MRecord) return Object.fromEntries(v.names().map((n) => [n, toJson(v.get(n))]));
  if (v instanceof MTemporal) return v.value;
  if (v instanceof MTable) return v.rows().map((r) => Object.fromEntries(v.columns.map((c, i) => [c.name, toJson(r[i])])));
  fail(`Json.FromValue: cannot write ${show(v)}`);
};
const fromJson = (j) => {
  if (Array.isArray(j)) return list(j.map(fromJson));
  if (j !== null && typeof j === "object") return new MRecord(Object.entries(j).map(([k, v]) => [k, fromJson(v)]));
  return j;
};
const binary = (bytes, meta = new MRecord([])) => new MBinary(() => ({ bytes, meta }));
def("Json.FromValue", [1, 2], (v) => binary(Buffer.from(JSON.stringify(toJson(v)), "utf8")));
def("Json.Document", [1, 2], (b) => {
  const content = typeof b === "string" ? b : b.read().bytes.toString("utf8");
  try { return fromJson(JSON.parse(content)); } catch { fail("We found extra characters at the end of the JSON input.", "DataFormat.Error"); }
});
def("Binary.Buffer", 1, (b) => { if (b === null) return null; const { bytes } = b.read(); return binary(bytes); });
def("Text.FromBinary", [1, 2], (b) => b.read().bytes.toString("utf8"));
def("Uri.EscapeDataString", 1, (t) => encodeURIComponent(t).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`));
def("Uri.Parts", 1, (t) => {
  let u;
  try { u = new URL(t); } catch { fail(`The URL '${t}' isn't valid.`, "Expression.Error", t); }
  return MRecord.from({ Scheme: u.protocol.replace(/:$/, ""), Host: u.hostname, Port: Number(u.port || (u.protocol === "https:" ? 443 : 80)),
    Path: u.pathname, Query: new MRecord([]), Fragment: u.hash.replace(/^#/, ""), UserName: u.username, Password: u.password });
});
lib.set("Uri.Type", TYPES.text);

// the host: Extension.*, Web.Contents
const harness = { delays: [], requests: 0, strings: new Map(), contents: new Set() };
def("Extension.LoadString", 1, (key) => {
  if (!harness.strings.has(key)) fail(`resources.resx has no string '${key}'`, "Extension.Error", key);
  return harness.strings.get(key);
});
def("Extension.Contents", 1, (name) => binary(Buffer.from(name)));
def("Web.Contents", [1, 2], (url, options = new MRecord([])) => {
  const opt = (n, d = null) => (options.has(n) ? options.get(n) : d);
  const query = opt("Query", new MRecord([]));
  const params = query.names().flatMap((k) => {
    const v = query.get(k);
    return (v instanceof MList ? v.items() : [v]).map((x) => [k, x]);
  });
  const content = opt("Content");
  const headers = opt("Headers", new MRecord([]));
  const request = {
    method: content === null ? "GET" : "POST",
    base: url,
    relative_path: opt("RelativePath", ""),
    query: params,
    headers: Object.fromEntries(headers.names().map((n) => [n, headers.get(n)])),
    body: content === null ? null : content.read().bytes.toString("utf8"),
    manual_status: opt("ManualStatusHandling", list([])).items(),
    is_retry: opt("IsRetry", false),
    manual_credentials: opt("ManualCredentials", false),
    timeout: opt("Timeout") ? opt("Timeout").value : null,
  };
  let answer = null;
  return new MBinary(() => {
    // one request per Web.Contents value, made the first time it is read
    if (answer === null) {
      harness.requests += 1;
      answer = exchange({ request });
    }
    if (answer.status >= 400 && !request.manual_status.includes(answer.status)) {
      fail(`Web.Contents failed to get contents from '${url}${request.relative_path}' (${answer.status})`,
        "DataSource.Error", MRecord.from({ Status: answer.status }));
    }
    const meta = MRecord.from({ "Response.Status": answer.status,
      Headers: MRecord.from(answer.headers ?? {}) });
    return { bytes: Buffer.from(answer.body ?? "", "utf8"), meta };
  });
});

// -- talking to the test ------------------------------------------------------------------------

let pending = "";
function readLine() {
  const chunk = Buffer.alloc(65536);
  for (;;) {
    const newline = pending.indexOf("\n");
    if (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      return line;
    }
    let n;
    try {
      n = readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      if (e.code === "EAGAIN") continue;
      throw e;
    }
    if (n === 0) throw new Error("m-eval: stdin closed");
    pending += chunk.toString("utf8", 0, n);
  }
}
const send = (message) => writeSync(1, JSON.stringify(message) + "\n");
function exchange(message) { send(message); return JSON.parse(readLine()); }

// JSON in: {"$table": {"columns": [{"name", "type"}], "rows": [...], "unstable": true}},
// {"$type": "Int64.Type"}, {"$date": "2026-01-02"}; objects are records and arrays lists.
function decode(j) {
  if (Array.isArray(j)) return list(j.map(decode));
  if (j === null || typeof j !== "object") return j;
  if ("$type" in j) return FACETS[j.$type] ?? (j.$type.startsWith("nullable ") ? nullable(TYPES[j.$type.slice(9)]) : TYPES[j.$type]);
  if ("$date" in j) return new MTemporal("date", j.$date);
  if ("$table" in j) return source(j.$table);
  return new MRecord(Object.entries(j).map(([k, v]) => [k, decode(v)]));
}
const sources = [];
function source(spec) {
  const columns = spec.columns.map((c) => ({ name: c.name, type: decode({ $type: c.type ?? "any" }) }));
  const rows = spec.rows.map((r) => r.map(decode));
  const counter = { name: spec.name ?? `source${sources.length + 1}`, reads: 0 };
  sources.push(counter);
  let seed = 7;
  return new MTable(columns, () => {
    counter.reads += 1;
    if (!spec.unstable) return rows;
    // a new query each time, in an order the source chooses
    const out = [...rows];
    for (let i = out.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345 + counter.reads) % 2147483648;
      const k = seed % (i + 1);
      [out[i], out[k]] = [out[k], out[i]];
    }
    return out;
  });
}
function encode(v) {
  v = force(v);
  if (v === null || typeof v !== "object") return v;
  if (v instanceof MList) return v.items().map(encode);
  if (v instanceof MRecord) return Object.fromEntries(v.names().map((n) => [n, encode(v.get(n))]));
  if (v instanceof MTable) {
    return { $table: { columns: v.columns.map((c) => ({ name: c.name, type: c.type.label() })),
      rows: v.rows().map((r) => r.map(encode)) } };
  }
  if (v instanceof MTemporal) return { [`$${v.kind}`]: v.value };
  if (v instanceof MType) return { $type: v.label() };
  return { $value: kindOf(v) };
}

function loadResources(path) {
  const xml = readFileSync(path, "utf8");
  for (const m of xml.matchAll(/<data name="([^"]+)"[^>]*>\s*<value>([\s\S]*?)<\/value>/g)) {
    harness.strings.set(m[1], m[2].replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'").replace(/&amp;/g, "&"));
  }
}

async function main() {
  const [sectionPath, resourcesPath] = process.argv.slice(2);
  const task = await PQP.TaskUtils.tryLexParse(PQP.DefaultSettings, readFileSync(sectionPath, "utf8"));
  if (PQP.TaskUtils.isError(task)) throw new Error(`syntax: ${task.error.message}`);
  if (resourcesPath) loadResources(resourcesPath);
  const global = new Scope(null, [...lib]);
  const section = new Scope(global);
  for (const member of elements(task.ast.sectionMembers)) {
    const pair = member.namePairedExpression;
    section.vars.set(unquote(pair.key.literal), new Thunk(() => evaluate(pair.value, section)));
  }
  const job = JSON.parse(readLine());
  let reply;
  try {
    const fn = section.lookup(job.call);
    const value = invoke(fn, (job.args ?? []).map(decode));
    reply = { result: encode(value) };
  } catch (e) {
    if (!(e instanceof MError)) throw e;
    reply = { error: encode(MRecord.from(e.record)) };
  }
  send({ ...reply, requests: harness.requests, delays: harness.delays,
    source_reads: Object.fromEntries(sources.map((s) => [s.name, s.reads])) });
}

main().catch((e) => { send({ crash: String(e.stack ?? e) }); process.exit(2); });
