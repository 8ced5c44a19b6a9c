// ML.EXPLAIN through the served functions script against the live server (started by
// tests/excel_addin/test_node.py): the same reasons as the JSON API gives for the same rows,
// many cells batched into few requests like ML.PREDICT.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadAddin, plain, CFError } from "./harness.mjs";

const BASE = process.env.SCOREBRIDGE_TEST_URL;
const KEY = process.env.SCOREBRIDGE_TEST_KEY;

async function runtime() {
  return { ...(await loadAddin({ base: BASE, key: KEY, served: BASE, fetchImpl: fetch })), CFError };
}

async function apiReasons(rows, k) {
  const resp = await fetch(`${BASE}/api/v1/models/churn/predict`, {
    method: "POST", headers: { "X-API-Key": KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ rows, options: { explain: k } }),
  });
  const body = await resp.json();
  assert.equal(resp.status, 200, JSON.stringify(body));
  return body.explanations.map((e) => e.reasons.map((r) => r.text));
}

const ROWS = [
  [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"],
  [60, 20.0, "two-year", "credit-card", 0, "none"],
  [1, null, "one-year", "mailed-check", 5, "dsl"],
];

test("EXPLAIN spills the JSON API's reasons, one row per input row", async () => {
  const { f } = await runtime();
  assert.deepEqual(plain(await f.EXPLAIN(ROWS, "churn", 3)), await apiReasons(ROWS, 3));
  const two = plain(await f.EXPLAIN(ROWS, "churn", 2));
  assert.deepEqual(two, (await apiReasons(ROWS, 2)));
  assert.match(two[0][0], / (raises|lowers) the probability of yes$/);
  assert.equal(plain(await f.EXPLAIN(ROWS.slice(0, 1), "churn"))[0].length, 3, "3 by default");
});

test("EXPLAIN cells are batched: 300 one-row calls in a few requests, each its own reasons",
  async () => {
    const { f, counter } = await runtime();
    const rows = Array.from({ length: 300 }, (_, i) => [i % 73, 20 + (i * 7.3) % 90,
      ["month-to-month", "one-year", "two-year"][i % 3], "bank-transfer", i % 6, "dsl"]);
    const answers = await Promise.all(rows.map((r) => f.EXPLAIN([r], "churn", 3)));
    assert.ok(counter.requests <= 3, `${counter.requests} requests`);
    assert.deepEqual(plain(answers.map((a) => a[0])), await apiReasons(rows, 3));
  });

test("EXPLAIN: a bad reason count or a bad row fails its own cell", async () => {
  const { f } = await runtime();
  await assert.rejects(f.EXPLAIN(ROWS, "churn", 0), /whole number from 1 to 100/);
  const out = await f.EXPLAIN([ROWS[0], [1, "lots", "one-year", "mailed-check", 1, "dsl"]],
    "churn", 2);
  assert.deepEqual(plain(out)[0], (await apiReasons([ROWS[0]], 2))[0]);
  assert.ok(out[1][0] instanceof CFError && /monthly_charges/.test(out[1][0].message));
});
