// The served functions script, run in Node with the harness (harness.mjs: a CustomFunctions shim,
// and Excel calling the functions as functions.json tells it) against a live ScoreBridge server
// (started by tests/excel_addin/test_node.py, which passes its URL and key). Answers a live server
// cannot give on demand (503, short answers, canary splits) are in excel_behaviours.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadAddin, plain, CFError, Excel, EMPTY, errorCell, entity, formattedNumber }
  from "./harness.mjs";

const BASE = process.env.SCOREBRIDGE_TEST_URL;
const KEY = process.env.SCOREBRIDGE_TEST_KEY;
const ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"];
const FEATURES = ["tenure_months", "monthly_charges", "contract", "payment_method",
  "support_calls", "internet_service"];

/** A fresh add-in runtime with the script as the live server serves it. */
async function runtime({ key = KEY, base = BASE, fetchImpl = fetch } = {}) {
  const addin = await loadAddin({ base, key, served: BASE, fetchImpl });
  return { ...addin, CFError };
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
  const addin = await runtime();
  const excel = new Excel(addin);
  const listed = excel.stream("MODELS");
  const described = excel.stream("MODEL_INFO", "churn");
  const missing = excel.stream("MODEL_INFO", "nope");
  try {
    const models = await listed.until(Array.isArray);
    assert.deepEqual(plain(models[0]), ["model", "production version", "latest version",
      "description"]);
    assert.equal(models[1][0], "churn");
    const info = await described.until(Array.isArray);
    assert.deepEqual(plain(info[0]), ["model", "churn"]);
    assert.ok(info.some((r) => r[0] === "metric: roc_auc"));
    const error = await missing.until((r) => r instanceof CFError);
    assert.equal(error.code, "#N/A");
  } finally {
    [listed, described, missing].forEach((s) => s.cancel());
  }
  assert.deepEqual(plain(await excel.call("FEATURES", "churn")), [FEATURES]);
  await assert.rejects(excel.call("FEATURES", "nope"), (e) => e.code === "#N/A");
});

test("an error cell fails its own row only, naming the column (allowErrorForDataTypeAny)", async () => {
  const addin = await runtime();
  const excel = new Excel(addin);
  const div0 = [errorCell("Div0", "#DIV/0!"), ...ROW.slice(1)];
  const na = [...ROW.slice(0, 4), errorCell("NotAvailable", "#N/A"), ROW[5]];
  const spill = await excel.call("PREDICT", [ROW, div0, ROW, na], "churn");
  assert.equal(spill.length, 4);
  assert.equal(typeof spill[0][0], "string");
  assert.equal(spill[2][0], spill[0][0]);
  assert.ok(spill[1][0] instanceof CFError);
  assert.equal(spill[1][0].code, "#VALUE!");
  assert.match(spill[1][0].message, /tenure_months: the cell holds the Excel error #DIV\/0!/);
  assert.match(spill[3][0].message, /support_calls: the cell holds the Excel error #N\/A/);
  // an error Excel adds after this script was written: still that row's #VALUE!, never scored
  const newer = [...ROW.slice(0, 2), errorCell("Python", "#PYTHON!"), ...ROW.slice(3)];
  const again = await excel.call("PREDICT", [ROW, newer], "churn");
  assert.equal(again[0][0], spill[0][0]);
  assert.match(again[1][0].message, /column 3: the cell holds the Excel error #PYTHON!/);
});

test("entity and formatted-number cells are scored by their value, not as [object Object]",
  async () => {
    const addin = await runtime();
    const excel = new Excel(addin);
    const expected = (await serverPredictions([ROW])).predictions[0];
    const typed = [ROW[0], formattedNumber(70.5, "$#,##0.00"),
      entity("month-to-month", { Term: { type: "String", basicValue: "monthly" } }),
      ROW[3], { type: "Double", basicValue: 3 }, { type: "String", basicValue: "fiber" }];
    assert.deepEqual(plain(await excel.call("PREDICT", [typed, ROW], "churn")),
      [[expected], [expected]]);
    const picture = [...ROW.slice(0, 5), { type: "WebImage", address: "https://x/y.png",
      basicType: "Error", basicValue: "#VALUE!" }];
    const spill = await excel.call("PREDICT", [ROW, picture], "churn");
    assert.equal(spill[0][0], expected);
    assert.match(spill[1][0].message, /column 6: a WebImage value cannot be scored/);
  });

test("empty cells: null, '', undefined and Empty values are one and the same", async () => {
  const addin = await runtime();
  const excel = new Excel(addin);
  const expected = (await serverPredictions([[12, null, ...ROW.slice(2)]])).predictions[0];
  const variants = [EMPTY, "", undefined, null, { type: "Empty", basicValue: "" }];
  const spill = await excel.call("PREDICT",
    variants.map((v) => [12, v, ...ROW.slice(2)]), "churn");
  assert.deepEqual(plain(spill), variants.map(() => [expected]));
  // a formula filled down past the data stays empty, whichever way the empties arrive
  const blank = variants.map((v) => new Array(6).fill(v));
  assert.deepEqual(plain(await excel.call("PREDICT", [ROW, ...blank], "churn")).slice(1),
    blank.map(() => [""]));
  // older desktop builds pass an empty cell as 0: indistinguishable from a typed 0, so the
  // documented way is IF(A2:F2="","",A2:F2), whose empties arrive as "" on every build
  const old = new Excel(addin, { emptyAs: 0 });
  const zeros = await old.call("PREDICT", [[12, EMPTY, ...ROW.slice(2)]], "churn");
  assert.deepEqual(plain(zeros), plain(await excel.call("PREDICT", [[12, 0, ...ROW.slice(2)]],
    "churn")));
  assert.deepEqual(plain(await old.call("PREDICT", [new Array(6).fill("")], "churn")), [[""]]);
});

test("a bad argument fails its own cell only; the other cells of the batch still score",
  async () => {
    const addin = await runtime();
    const excel = new Excel(addin);
    const rows = churnRows(3);
    const expected = (await serverPredictions(rows)).predictions;
    const cells = [
      excel.call("PREDICT", [rows[0]], "churn"),
      excel.call("PREDICT", [rows[1]], "churn", 1.5),
      excel.call("PREDICT", [rows[2]], "Churn Model"),
      excel.call("PREDICT", [rows[2]], "churn", 1),
      excel.call("PREDICT", [rows[1]], "churn", EMPTY),
    ];
    const settled = await Promise.allSettled(cells);
    assert.equal(settled[0].value[0][0], expected[0]);
    assert.equal(settled[1].status, "rejected");
    assert.equal(settled[1].reason.code, "#VALUE!");
    assert.match(settled[1].reason.message, /version: 1\.5 is not a version number/);
    assert.match(settled[2].reason.message, /model: 'Churn Model' is not a model name/);
    assert.equal(settled[3].value[0][0], expected[2]);
    assert.equal(settled[4].value[0][0], expected[1]);
  });
