// The Google Sheets script, run in Node with Apps Script shims (UrlFetchApp is synchronous there,
// so the shim makes the real HTTP call in a child process) against the live server.
import { test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const BASE = process.env.SCOREBRIDGE_TEST_URL;
const KEY = process.env.SCOREBRIDGE_TEST_KEY;
const ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"];
const source = readFileSync(new URL("../google_sheets/ScoreBridge.gs", import.meta.url), "utf8");

function syncFetch(url, options) {
  const script = `fetch(${JSON.stringify(url)}, ${JSON.stringify({
    method: options.method.toUpperCase(),
    headers: { ...options.headers, "Content-Type": options.contentType },
    body: options.payload,
  })}).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() })))`;
  return JSON.parse(execFileSync(process.execPath, ["-e", script], { encoding: "utf8" }));
}

function sheets(properties) {
  const calls = [];
  const sandbox = {
    PropertiesService: { getDocumentProperties: () => ({ getProperty: (k) => properties[k] ?? null }) },
    UrlFetchApp: {
      fetch: (url, options) => {
        calls.push({ url, options });
        const answer = syncFetch(url, options);
        return { getResponseCode: () => answer.status, getContentText: () => answer.text };
      },
    },
    JSON, Error,
  };
  vm.createContext(sandbox);
  vm.runInContext(source, sandbox, { filename: "ScoreBridge.gs" });
  return { PREDICT: sandbox.PREDICT, calls };
}

const plain = (v) => JSON.parse(JSON.stringify(v));

test("PREDICT sends one batch request and returns one value per row", () => {
  const { PREDICT, calls } = sheets({ SCOREBRIDGE_URL: BASE, SCOREBRIDGE_API_KEY: KEY });
  const one = plain(PREDICT([ROW], "churn"));
  assert.equal(one.length, 1);
  assert.ok(["yes", "no"].includes(one[0][0]));
  const block = plain(PREDICT([ROW, ROW, ["", "", "", "", "", ""]], "churn"));
  assert.deepEqual(block, [one[0], one[0], [""]]);
  assert.equal(calls.length, 2);
  assert.equal(calls[0].url, BASE + "/excel/v1/batch");
  assert.equal(calls[0].options.headers["X-API-Key"], KEY);
  assert.equal(plain(PREDICT(ROW))[0][0], one[0][0]);  // a single row range, default model
});

test("bad rows, bad models and a missing key give messages", () => {
  const { PREDICT } = sheets({ SCOREBRIDGE_URL: BASE, SCOREBRIDGE_API_KEY: KEY });
  const bad = [12, "abc", "month-to-month", "electronic-check", 3, "fiber"];
  const mixed = plain(PREDICT([ROW, bad], "churn"));
  assert.equal(mixed[1][0], "#ERROR: monthly_charges: expected a number, got 'abc'");
  assert.throws(() => PREDICT([bad], "churn"), /monthly_charges/);
  assert.throws(() => PREDICT([ROW], "nope"), /no model named 'nope'/);
  const wrong = sheets({ SCOREBRIDGE_URL: BASE, SCOREBRIDGE_API_KEY: "sb_000000000000_x" });
  assert.throws(() => wrong.PREDICT([ROW], "churn"), /not valid or has been revoked/);
  const unset = sheets({});
  assert.throws(() => unset.PREDICT([ROW], "churn"), /Set the ScoreBridge server/);
});
