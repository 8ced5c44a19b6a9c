// The test harness for the add-in's script: it runs src/functions.js in a fresh Node context with
// the parts of Office it uses (a CustomFunctions shim, OfficeRuntime.storage, optionally
// Excel.run), calls the functions the way Excel does as the metadata in functions.json tells it,
// and starts small real HTTP servers that answer like ScoreBridge does, for the answers a live
// server cannot give on demand (a 503, a short answer, a canary that splits a range).
import http from "node:http";
import fs from "node:fs/promises";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src");

/** Values made inside the add-in's own context, compared as plain JSON values. */
export const plain = (value) => JSON.parse(JSON.stringify(value));

export class CFError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

export const ERROR_CODES = {
  invalidValue: "#VALUE!", notAvailable: "#N/A", divisionByZero: "#DIV/0!",
  invalidNumber: "#NUM!", nullReference: "#NULL!", invalidName: "#NAME?", invalidReference: "#REF!",
};

/** The storage key the add-in keeps an API key under, for one server origin. */
export const keyName = (base) => `scorebridge.apiKey@${new URL(base).origin}`;

/** OfficeRuntime.storage over a Map; `failWrites` makes setItem resolve without storing, as the
 *  real one can. */
export function officeStorage(entries = [], { failWrites = false } = {}) {
  const map = new Map(entries);
  return {
    map,
    failWrites,
    getItem: async (k) => (map.has(k) ? map.get(k) : null),
    setItem: async function (k, v) { if (!this.failWrites) map.set(k, String(v)); },
    removeItem: async function (k) { if (!this.failWrites) map.delete(k); },
  };
}

/** A fresh add-in runtime: the script (as the live server serves it, or from src/), the
 *  CustomFunctions shim, storage holding `base` and `key`, and a fetch that counts requests. */
export async function loadAddin({ base, key, served = null, storage = null, fetchImpl = fetch,
  excel = undefined } = {}) {
  const registry = {};
  const store = storage || officeStorage(base ? [
    ["scorebridge.url", base], [keyName(base), key],
  ] : []);
  const counter = { requests: 0, bodies: [], keys: [] };
  const sandbox = {
    CustomFunctions: {
      Error: CFError, ErrorCode: ERROR_CODES,
      associate: (id, fn) => { registry[id] = fn; },
    },
    OfficeRuntime: { storage: store },
    fetch: async (url, options) => {
      counter.requests += 1;
      if (options && options.body) counter.bodies.push(options.body.length);
      counter.keys.push(options && options.headers ? options.headers["X-API-Key"] : undefined);
      return fetchImpl(url, options);
    },
    AbortController, URL, setTimeout, clearTimeout, console,
  };
  if (excel !== undefined) sandbox.Excel = excel;
  const source = served ? await (await fetch(`${served}/excel/functions.js`)).text()
    : await fs.readFile(path.join(SRC, "functions.js"), "utf8");
  const metadata = served ? await (await fetch(`${served}/excel/functions.json`)).json()
    : JSON.parse(await fs.readFile(path.join(SRC, "functions.json"), "utf8"));
  vm.createContext(sandbox);
  vm.runInContext(source, sandbox, { filename: "functions.js" });
  return { f: registry, counter, storage: store, metadata, ScoreBridge: sandbox.ScoreBridge };
}

// -- cells as Excel holds them, and Excel calling a function -------------------------------------

/** An empty cell: Excel passes it as null on current builds, as 0 on some older desktop builds. */
export const EMPTY = Symbol("empty cell");

/** An error cell, as the Excel data types give it (Excel.ErrorCellValue). */
export const errorCell = (errorType, basicValue) =>
  ({ type: "Error", basicType: "Error", errorType, basicValue });

/** An entity value (Excel.EntityCellValue): its basic value is #VALUE!, its text is what shows. */
export const entity = (text, properties = {}) =>
  ({ type: "Entity", text, basicType: "Error", basicValue: "#VALUE!", properties });

/** A formatted number (Excel.FormattedNumberCellValue). */
export const formattedNumber = (basicValue, numberFormat) =>
  ({ type: "FormattedNumber", basicType: "Double", basicValue, numberFormat });

const isErrorCell = (v) => v !== null && typeof v === "object" && v.type === "Error";
const isDataType = (v) => v !== null && typeof v === "object" && typeof v.type === "string";

/** What Excel does when it does not call a function (an argument it will not pass): the whole
 *  formula shows #VALUE!, the function never runs. */
export class NotCalled extends Error {
  constructor(why) { super(`Excel shows #VALUE! for the whole formula without calling it: ${why}`); }
}

/** Excel as the custom-functions runtime behaves, driven by the add-in's functions.json:
 *  - an error cell reaches an `any` parameter only when `allowErrorForDataTypeAny` is true;
 *    otherwise Excel does not call the function at all;
 *  - a data type (entity, formatted number) reaches an `any` parameter as its object when
 *    `allowCustomDataForDataTypeAny` is true, as its basic value otherwise;
 *  - an empty cell arrives as `emptyAs` (null, or 0 for the older desktop builds);
 *  - an omitted optional argument arrives as null;
 *  - a streaming function gets a StreamingInvocation and may set results many times. */
export class Excel {
  constructor(addin, { emptyAs = null } = {}) {
    this.addin = addin;
    this.metadata = addin.metadata;
    this.emptyAs = emptyAs;
  }

  spec(id) {
    const spec = this.metadata.functions.find((f) => f.id === id);
    if (!spec) throw new Error(`${id} is not in functions.json`);
    return spec;
  }

  cell(param, value) {
    if (value === EMPTY) return this.emptyAs;
    const any = (param.type || "any") === "any";
    if (isErrorCell(value)) {
      if (any && this.metadata.allowErrorForDataTypeAny === true) return value;
      throw new NotCalled(`${param.name} holds ${value.basicValue} and allowErrorForDataTypeAny is not set`);
    }
    if (isDataType(value)) {
      return any && this.metadata.allowCustomDataForDataTypeAny === true ? value : value.basicValue;
    }
    return value;
  }

  argument(param, value) {
    if (value === undefined) return null;
    if (param.dimensionality === "matrix") {
      const rows = Array.isArray(value) ? value : [[value]];
      return rows.map((row) => (Array.isArray(row) ? row : [row]).map((v) => this.cell(param, v)));
    }
    return this.cell(param, value);
  }

  /** The function's answer (or its thrown error, as a rejection). */
  async call(id, ...args) {
    const spec = this.spec(id);
    const passed = spec.parameters.map((p, i) => this.argument(p, args[i]));
    if (spec.options && spec.options.stream) throw new Error(`${id} streams: use stream()`);
    return this.addin.f[id](...passed);
  }

  /** A streaming function's results as they come (`until()` waits for one). */
  stream(id, ...args) {
    const spec = this.spec(id);
    if (!(spec.options && spec.options.stream)) throw new Error(`${id} does not stream`);
    const passed = spec.parameters.map((p, i) => this.argument(p, args[i]));
    const results = [];
    const waiters = [];
    const invocation = {
      setResult: (value) => {
        results.push(value);
        waiters.splice(0).forEach((w) => w());
      },
      onCanceled: null,
    };
    this.addin.f[id](...passed, invocation);
    return {
      results,
      /** The first result (already set or to come) that `predicate` accepts. */
      until(predicate, timeoutMs = 5000) {
        const found = results.find(predicate);
        if (found !== undefined) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(
            `${id}: no such result in ${timeoutMs} ms; got ${JSON.stringify(results)}`)), timeoutMs);
          const check = () => {
            const hit = results.find(predicate);
            if (hit === undefined) { waiters.push(check); return; }
            clearTimeout(timer);
            resolve(hit);
          };
          waiters.push(check);
        });
      },
      cancel() { if (invocation.onCanceled) invocation.onCanceled(); },
    };
  }
}

/** Excel.run with the one call the add-in makes: application.calculate(type). */
export function fakeExcelApi() {
  const calculations = [];
  return {
    calculations,
    CalculationType: { recalculate: "Recalculate", full: "Full", fullRebuild: "FullRebuild" },
    run: async (batch) => {
      const queued = [];
      const context = {
        workbook: { application: { calculate: (type) => queued.push(type) } },
        sync: async () => { calculations.push(...queued.splice(0)); },
      };
      return batch(context);
    },
  };
}

// -- a small real server that answers like ScoreBridge -----------------------------------------

/** A node:http server on 127.0.0.1. `handler(request, n)` gets {method, path, headers, body} and
 *  the request's number (1-based) and returns {status, headers, json, delay}. */
export async function harnessServer(handler) {
  const requests = [];
  let inFlight = 0;
  const stats = { maxInFlight: 0 };
  const server = http.createServer((req, res) => {
    inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const record = { method: req.method, path: req.url, headers: req.headers,
        body: text ? JSON.parse(text) : null, at: Date.now() };
      requests.push(record);
      try {
        const answer = (await handler(record, requests.length)) || {};
        if (answer.delay) await new Promise((r) => setTimeout(r, answer.delay));
        const type = (answer.status || 200) >= 400 ? "application/problem+json" : "application/json";
        res.writeHead(answer.status || 200, { "Content-Type": type, ...(answer.headers || {}) });
        res.end(answer.json === undefined ? "" : JSON.stringify(answer.json));
      } catch (e) {
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(String(e && e.stack));
      } finally {
        inFlight -= 1;
      }
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`, requests, stats,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** One call's result as /excel/v1/batch gives it: every row predicted as "v<version>", so a
 *  test sees which version answered each row. */
export function resultFor(call, version) {
  return { model: call.model || "churn", version, header: false,
    predictions: call.values.map(() => `v${version}`), errors: [], blank: [] };
}

/** A batch handler that answers every call, unpinned ones with `version(n)` for request n. */
export function batchAnswer(version = () => 1) {
  return (request, n) => ({
    json: { results: request.body.calls.map((c) => resultFor(c, c.version || version(n))) },
  });
}

/** A promise that fails when `p` has not settled within `ms` (a #BUSY! cell never settles). */
export function within(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still #BUSY! after ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}
