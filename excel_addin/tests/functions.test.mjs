// The served functions script, run in Node with a small CustomFunctions shim against a live
// ScoreBridge server (started by tests/excel_addin/test_node.py, which passes its URL and key).
import { test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";

const BASE = process.env.SCOREBRIDGE_TEST_URL;
// values made inside the add-in's own context, compared as plain JSON values
const plain = (value) => JSON.parse(JSON.stringify(value));
const KEY = process.env.SCOREBRIDGE_TEST_KEY;
const ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"];
const FEATURES = ["tenure_months", "monthly_charges", "contract", "payment_method",
  "support_calls", "internet_service"];

/** A fresh add-in runtime: the script as served, a CustomFunctions shim, storage, and a fetch
 *  that counts requests. */
async function runtime({ key = KEY, base = BASE, fetchImpl = fetch } = {}) {
  const registry = {};
  const storage = new Map([["scorebridge.url", base], ["scorebridge.apiKey", key]]);
  class CFError extends Error {
    constructor(code, message) { super(message); this.code = code; }
  }
  const counter = { requests: 0, bodies: [] };
  const sandbox = {
    CustomFunctions: {
      Error: CFError,
      ErrorCode: { invalidValue: "#VALUE!", notAvailable: "#N/A" },
      associate: (id, fn) => { registry[id] = fn; },
    },
    OfficeRuntime: { storage: {
      getItem: async (k) => storage.get(k) ?? null,
      setItem: async (k, v) => { storage.set(k, v); },
    } },
    fetch: async (url, options) => {
      counter.requests += 1;
      if (options && options.body) counter.bodies.push(options.body.length);
      return fetchImpl(url, options);
    },
    AbortController, setTimeout, clearTimeout, console, JSON, Date, Promise, Map,
  };
  const source = await (await fetch(`${BASE}/excel/functions.js`)).text();
  vm.createContext(sandbox);
  vm.runInContext(source, sandbox, { filename: "functions.js" });
  return { f: registry, counter, CFError, ScoreBridge: sandbox.ScoreBridge };
}

async function serverPredictions(rows) {
  const resp = await fetch(`${BASE}/api/v1/models/churn/predict`, {
    method: "POST", headers: { "X-API-Key": KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ rows }),
  });
  return (await resp.json());
}

function churnRows(n) {
  const contracts = ["month-to-month", "one-year", "two-year"];
  const payments = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"];
  const internet = ["dsl", "fiber", "none"];
  return Array.from({ length: n }, (_, i) => [i % 73, 20 + (i * 7.3) % 90,
    contracts[i % 3], payments[i % 4], i % 6, internet[i % 3]]);
}

test("10,000 single-row calls issued at once: at most 25 requests, all correct", async () => {
  const { f, counter } = await runtime();
  const rows = churnRows(10000);
  const started = Date.now();
  const answers = await Promise.all(rows.map((r) => f.PREDICT([r], "churn")));
  const elapsed = Date.now() - started;
  assert.ok(counter.requests <= 25, `${counter.requests} requests`);
  assert.ok(Math.max(...counter.bodies) < 5_000_000, "each request far below 5 MB");
  const expected = await serverPredictions(rows);
  assert.deepEqual(plain(answers.map((a) => a[0][0])), expected.predictions);
  console.log(`# 10000 cells: ${counter.requests} requests, ${elapsed} ms`);
});

test("a recalculation that changes nothing sends nothing", async () => {
  const { f, counter } = await runtime();
  const rows = churnRows(200);
  const first = await Promise.all(rows.map((r) => f.PREDICT([r], "churn")));
  const before = counter.requests;
  const second = await Promise.all(rows.map((r) => f.PREDICT([r], "churn")));
  assert.equal(counter.requests, before);
  assert.deepEqual(plain(second), plain(first));
  // probabilities come from the same cached answers
  await Promise.all(rows.map((r) => f.PREDICT_PROBA([r], "churn")));
  assert.equal(counter.requests, before);
  // a changed cell is sent, alone
  await f.PREDICT([[13, ...ROW.slice(1)]], "churn");
  assert.equal(counter.requests, before + 1);
});

test("a block spills one value per row; a header row is matched by name", async () => {
  const { f } = await runtime();
  const rows = churnRows(5);
  const expected = (await serverPredictions(rows)).predictions;
  const spill = await f.PREDICT(rows, "churn");
  assert.deepEqual(plain(spill), expected.map((v) => [v]));
  const reversed = [[...FEATURES].reverse(), ...rows.map((r) => [...r].reverse())];
  assert.deepEqual(plain(await f.PREDICT(reversed, "churn")), expected.map((v) => [v]));
});

test("a range larger than one request is sent in parts and keeps its header", async () => {
  const { f, counter } = await runtime();
  const rows = churnRows(12000);
  const withHeader = [[...FEATURES].reverse(), ...rows.map((r) => [...r].reverse())];
  const spill = await f.PREDICT(withHeader, "churn");
  assert.equal(spill.length, 12000);
  assert.ok(counter.requests >= 3);
  const expected = await serverPredictions(rows.slice(0, 5000));
  assert.deepEqual(plain(spill.slice(0, 5000).map((r) => r[0])), expected.predictions);
  const tail = await serverPredictions(rows.slice(10000));
  assert.deepEqual(plain(spill.slice(10000).map((r) => r[0])), tail.predictions);
});

test("bad rows become #VALUE! with a message; good rows still score", async () => {
  const { f, CFError, ScoreBridge } = await runtime();
  const bad = [12, "abc", "month-to-month", "electronic-check", 3, "fiber"];
  const spill = await f.PREDICT([ROW, bad, ROW], "churn");
  assert.equal(typeof spill[0][0], "string");
  assert.ok(spill[1][0] instanceof CFError);
  assert.equal(spill[1][0].code, "#VALUE!");
  assert.match(spill[1][0].message, /monthly_charges: expected a number, got 'abc'/);
  assert.equal(spill[2][0], spill[0][0]);
  await assert.rejects(f.PREDICT([bad], "churn"), (e) => e instanceof CFError &&
    /monthly_charges/.test(e.message));
  await assert.rejects(f.PREDICT([[1, 2]], "churn"), /expected 6 values per row/);
  const errorCell = { code: "#N/A" };  // an Excel error value passed in from a cell
  await assert.rejects(f.PREDICT([[errorCell, ...ROW.slice(1)]], "churn"), /Excel error #N\/A/);
  // an empty row (a formula filled down past the data) stays empty instead of being scored
  assert.deepEqual(plain(await f.PREDICT([["", "", "", "", "", ""]], "churn")), [[""]]);
  const mixed = await f.PREDICT([ROW, [null, null, null, null, null, null]], "churn");
  assert.equal(mixed[1][0], "");
  assert.ok(ScoreBridge.state.errors.length >= 3, "errors listed for the task pane");
});

test("unknown model, header that matches nothing, no key, revoked key", async () => {
  const { f } = await runtime();
  await assert.rejects(f.PREDICT([ROW], "nope"), (e) => e.code === "#N/A" &&
    /no model named 'nope'/.test(e.message));
  const unmatched = await f.PREDICT([["a", "b", "c", "d", "e", "f"], ROW], "churn");
  assert.match(unmatched[0][0].message, /tenure_months: expected a number, got 'a'/);
  assert.equal(typeof unmatched[1][0], "string");
  const nokey = await runtime({ key: "" });
  await assert.rejects(nokey.f.PREDICT([ROW], "churn"), /No API key/);
  const wrong = await runtime({ key: "sb_000000000000_notavalidkey" });
  await assert.rejects(wrong.f.PREDICT([ROW], "churn"), /not valid or has been revoked/);
});

test("a server that is down or hangs gives #N/A, not a hang", async () => {
  const down = await runtime({ base: "http://127.0.0.1:9" });
  await assert.rejects(down.f.PREDICT([ROW], "churn"), (e) => e.code === "#N/A" &&
    /Cannot reach ScoreBridge/.test(e.message));
  const hanging = await runtime({
    fetchImpl: (url, options) => new Promise((resolve, reject) => {
      options.signal.addEventListener("abort", () => {
        const err = new Error("aborted"); err.name = "AbortError"; reject(err);
      });
    }),
  });
  hanging.ScoreBridge.state.timeoutMs = 500;
  const started = Date.now();
  const pending = hanging.f.PREDICT([ROW], "churn");
  await assert.rejects(pending, /did not answer within/);
  assert.ok(Date.now() - started < 5000);
});

test("PREDICT_PROBA: positive class by default, a named class, or all", async () => {
  const { f } = await runtime();
  const rows = churnRows(3);
  const expected = await serverPredictions(rows);
  assert.deepEqual(plain(await f.PREDICT_PROBA(rows, "churn")),
    expected.probabilities.map((p) => [p[1]]));
  assert.deepEqual(plain(await f.PREDICT_PROBA(rows, "churn", "no")),
    expected.probabilities.map((p) => [p[0]]));
  assert.deepEqual(plain(await f.PREDICT_PROBA(rows, "churn", "all")), expected.probabilities);
  await assert.rejects(f.PREDICT_PROBA(rows, "churn", "maybe"), /Unknown class maybe/);
});

test("MODELS, MODEL_INFO and FEATURES spill", async () => {
  const { f } = await runtime();
  const models = await f.MODELS();
  assert.deepEqual(plain(models[0]), ["model", "production version", "latest version", "description"]);
  assert.equal(models[1][0], "churn");
  const info = await f.MODEL_INFO("churn");
  assert.deepEqual(plain(info[0]), ["model", "churn"]);
  assert.ok(info.some((r) => r[0] === "metric: roc_auc"));
  assert.deepEqual(plain(await f.FEATURES("churn")), [FEATURES]);
  await assert.rejects(f.FEATURES("nope"), (e) => e.code === "#N/A");
});
