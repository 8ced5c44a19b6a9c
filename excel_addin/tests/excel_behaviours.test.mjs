// What Excel and a busy ScoreBridge do that a live test server cannot show on demand: a canary
// answering the parts of one range with different versions, a 503 or 429 with Retry-After, an
// answer with fewer results than calls, a whole batch refused for one call, slow servers and a
// browser that would queue every part at once, a storage that drops writes, a second server.
// Each server here is a real HTTP server (node:http) answering like /excel/v1/batch does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadAddin, plain, CFError, Excel, harnessServer, batchAnswer, resultFor, within,
  officeStorage, keyName, fakeExcelApi, EMPTY, errorCell, entity, formattedNumber }
  from "./harness.mjs";

const KEY = "sb_000000000000_harness";
const ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"];
const rows = (n) => Array.from({ length: n }, (_, i) => [i, ...ROW.slice(1)]);

/** A harness server and an add-in pointed at it; `limits` shorten its waits for speed. */
async function setup(handler, { limits = {}, ...options } = {}) {
  const server = await harnessServer(handler);
  const addin = await loadAddin({ base: server.url, key: KEY, ...options });
  Object.assign(addin.ScoreBridge.state.limits || {}, limits);
  return { server, addin, excel: new Excel(addin) };
}

const batches = (server) => server.requests.filter((r) => r.path === "/excel/v1/batch");

test("a canary never splits one range across versions: later parts are pinned to the first's",
  async () => {
    // like ScoreBridge under a canary: unpinned calls get v1 or v2 in turn, pinned ones theirs
    let unpinned = 0;
    const { server, excel } = await setup((request) => ({ json: { results: request.body.calls.map(
      (c) => resultFor(c, c.version || ((unpinned += 1) % 2 ? 1 : 2))) } }));
    try {
      for (let round = 0; round < 4; round += 1) {
        const spill = await excel.call("PREDICT", rows(12000), "churn");
        assert.equal(spill.length, 12000);
        const versions = new Set(plain(spill).map((r) => r[0]));
        assert.deepEqual([...versions], [round % 2 ? "v2" : "v1"], "one version per recalculation");
        excel.addin.ScoreBridge.clearCache();
      }
      const sent = batches(server);
      assert.equal(sent.length, 12);
      // the first part goes unpinned; the others name the version it was answered with
      sent.forEach((r, i) => assert.equal(r.body.calls[0].version,
        i % 3 === 0 ? null : Math.floor(i / 3) % 2 + 1));
    } finally {
      await server.close();
    }
  });

test("answers follow the deployed version: at once when an answer shows it, else within seconds",
  async () => {
    let deployed = 1;
    const { server, excel } = await setup((request, n) => (request.path === "/api/v1/models/churn"
      ? { json: { name: "churn", production_version: deployed } }
      : batchAnswer(() => deployed)(request, n)), { limits: { versionCheckMs: 300 } });
    const gets = () => server.requests.filter((r) => r.method === "GET").length;
    try {
      assert.deepEqual(plain(await excel.call("PREDICT", [ROW], "churn")), [["v1"]]);
      assert.deepEqual(plain(await excel.call("PREDICT", [ROW], "churn")), [["v1"]]);
      assert.equal(batches(server).length, 1, "the recalculation was answered from the cache");
      deployed = 2;  // a promotion: another cell's answer shows it first
      await excel.call("PREDICT", [[1, ...ROW.slice(1)]], "churn");
      assert.deepEqual(plain(await excel.call("PREDICT", [ROW], "churn")), [["v2"]]);
      assert.equal(batches(server).length, 3);
      deployed = 3;  // a rollback, and nothing else recalculates: a cheap check a moment later
      await new Promise((r) => setTimeout(r, 350));
      const cells = Array.from({ length: 50 }, () => excel.call("PREDICT", [ROW], "churn"));
      assert.deepEqual(plain(await Promise.all(cells)), cells.map(() => [["v3"]]));
      assert.equal(gets(), 1, "one version check for all the cells");
      assert.equal(batches(server).length, 4);
      assert.deepEqual(plain(await excel.call("PREDICT", [ROW], "churn")), [["v3"]]);
      assert.equal(batches(server).length + gets(), 5, "checked, unchanged: nothing more sent");
    } finally {
      await server.close();
    }
  });

test("a key that may not read models: cached answers are trusted for a while, unchecked",
  async () => {
    const { server, addin, excel } = await setup((request, n) => (request.method === "GET"
      ? { status: 403, json: { status: 403, detail: "this API key lacks the 'read' scope" } }
      : batchAnswer()(request, n)), { limits: { versionCheckMs: 100, versionTtlMs: 600 } });
    const gets = () => server.requests.filter((r) => r.method === "GET").length;
    try {
      await excel.call("PREDICT", [ROW], "churn");
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(plain(await excel.call("PREDICT", [ROW], "churn")), [["v1"]]);
      await excel.call("PREDICT", [ROW], "churn");
      assert.deepEqual([batches(server).length, gets()], [1, 1], "checked once, then trusted");
      assert.equal(addin.ScoreBridge.state.errors.length, 0, "no error listed for the check");
      await new Promise((r) => setTimeout(r, 650));
      await excel.call("PREDICT", [ROW], "churn");
      assert.equal(batches(server).length, 2, "asked again once the version is a minute old");
    } finally {
      await server.close();
    }
  });

test("what is sent for each kind of cell: values, never objects; empties always null", async () => {
  const { server, addin } = await setup(batchAnswer());
  try {
    const cells = [EMPTY, "", null, undefined, { type: "Empty", basicValue: "" }, 0,
      entity("fiber"), formattedNumber(0.25, "0%"), { type: "Boolean", basicValue: true },
      errorCell("Div0", "#DIV/0!"), errorCell("NotAvailable"), new CFError("#N/A", ""),
      { type: "WebImage", address: "https://x/y.png", basicType: "Error", basicValue: "#VALUE!" }];
    for (const emptyAs of [null, 0]) {
      // the row itself is #VALUE!: a picture cannot be scored (sent as null, refused here)
      await assert.rejects(new Excel(addin, { emptyAs }).call("PREDICT", [cells], "churn"),
        /column 13: a WebImage value cannot be scored/);
      addin.ScoreBridge.clearCache();
    }
    const [current, older] = batches(server).map((r) => r.body.calls[0].values[0]);
    assert.deepEqual(current, [null, null, null, null, null, 0, "fiber", 0.25, true, "#DIV/0!",
      "#N/A", "#N/A", null]);
    // older desktop builds: an empty cell comes as 0, which no one can tell from a typed 0
    assert.deepEqual(older, [0, ...current.slice(1)]);
  } finally {
    await server.close();
  }
});

test("503 with a short Retry-After is retried; a long one, 502, 504 and 429 give #N/A", async () => {
  const script = [];
  const { server, excel } = await setup((request, n) => {
    const step = script.shift();
    return step ? step(request, n) : batchAnswer()(request, n);
  }, { limits: { retryDefaultMs: 50 } });
  try {
    script.push(() => ({ status: 503, headers: { "Retry-After": "1" },
      json: { title: "Service unavailable", status: 503, detail: "restarting" } }));
    const started = Date.now();
    assert.deepEqual(plain(await excel.call("PREDICT", [ROW], "churn")), [["v1"]]);
    assert.ok(Date.now() - started >= 900, "waited what Retry-After asked");

    const busy = (status, headers = {}) => () => ({ status, headers, json: { status } });
    const cases = [
      [busy(503, { "Retry-After": "120" }), /unavailable \(HTTP 503\).*retry in about 2 min/],
      [busy(429, { "Retry-After": "45" }), /busy \(HTTP 429\).*retry in about 45 s/],
    ];
    for (const [step, message] of cases) {
      excel.addin.ScoreBridge.clearCache();
      script.push(step);
      const t0 = Date.now();
      await assert.rejects(excel.call("PREDICT", [ROW], "churn"),
        (e) => e instanceof CFError && e.code === "#N/A" && message.test(e.message));
      assert.ok(Date.now() - t0 < 900, "a long wait is not waited in the cell");
    }
    for (const status of [502, 504, 429]) {
      excel.addin.ScoreBridge.clearCache();
      script.push(busy(status), busy(status), busy(status));  // no Retry-After: retried twice
      await assert.rejects(excel.call("PREDICT", [ROW], "churn"), (e) => e.code === "#N/A" &&
        new RegExp(`(unavailable|busy) \\(HTTP ${status}\\)`).test(e.message));
    }
    assert.equal(script.length, 0);
  } finally {
    await server.close();
  }
});

test("401 and 403 say how to connect", async () => {
  const { server, excel } = await setup((request) => request.headers["x-api-key"] === "scoped"
    ? { status: 403, json: { status: 403, detail: "this API key lacks the 'score' scope" } }
    : { status: 401, json: { status: 401, detail: "the API key is not valid or has been revoked" } });
  try {
    await assert.rejects(excel.call("PREDICT", [ROW], "churn"), (e) => e.code === "#N/A" &&
      /not valid or has been revoked.*ScoreBridge pane.*Save and connect/.test(e.message));
    await excel.addin.ScoreBridge.setConfig(server.url, "scoped");
    await assert.rejects(excel.call("PREDICT", [ROW], "churn"), (e) => e.code === "#N/A" &&
      /lacks the 'score' scope.*Save and connect/.test(e.message));
  } finally {
    await server.close();
  }
});

test("an answer with fewer results than calls: every unanswered cell gets an error", async () => {
  const { server, excel } = await setup((request) => ({
    json: { results: request.body.calls.slice(0, 1).map((c) => resultFor(c, 1)) },
  }));
  try {
    const cells = [0, 1, 2].map((i) => excel.call("PREDICT", [[i, ...ROW.slice(1)]], "churn"));
    const settled = await within(Promise.allSettled(cells), 3000, "cells of a short answer");
    assert.equal(batches(server).length, 1);
    assert.deepEqual(plain(settled[0].value), [["v1"]]);
    for (const s of settled.slice(1)) {
      assert.equal(s.status, "rejected");
      assert.equal(s.reason.code, "#N/A");
      assert.match(s.reason.message, /answered 1 of 3 calls/);
    }
  } finally {
    await server.close();
  }
});

test("a whole batch refused for one call: that cell errors, the others are re-sent and score",
  async () => {
    // a rule the add-in cannot check itself (here: version 7 is refused by the server's schema)
    const { server, excel } = await setup((request) => {
      const bad = request.body.calls.map((c, i) => (c.version === 7 ? i : -1)).filter((i) => i >= 0);
      if (bad.length) {
        const errors = bad.map((i) => ({ message: `body field 'calls.${i}.version' must be at most 6` }));
        return { status: 400, json: { status: 400, detail: errors[0].message, errors } };
      }
      return batchAnswer()(request);
    });
    try {
      const cells = [excel.call("PREDICT", [ROW], "churn"), excel.call("PREDICT", [ROW], "churn", 7),
        excel.call("PREDICT", [[1, ...ROW.slice(1)]], "churn", 2)];
      const settled = await Promise.allSettled(cells);
      assert.deepEqual(plain(settled[0].value), [["v1"]]);
      assert.equal(settled[1].reason.code, "#VALUE!");
      assert.match(settled[1].reason.message, /^version must be at most 6$/);
      assert.deepEqual(plain(settled[2].value), [["v2"]]);
      const sent = batches(server);
      assert.equal(sent.length, 2);
      assert.equal(sent[1].body.calls.length, 2, "re-sent without the refused call");
    } finally {
      await server.close();
    }
  });

test("arguments the server would refuse are checked before sending: only their cell fails",
  async () => {
    const { server, excel } = await setup(batchAnswer());
    try {
      const cells = [excel.call("PREDICT", [ROW], "churn", 1.5),
        excel.call("PREDICT", [ROW], "x".repeat(300)), excel.call("PREDICT", [ROW], "churn", -2),
        excel.call("PREDICT", [ROW], "churn", "2"), excel.call("PREDICT", [ROW], "churn")];
      const settled = await Promise.allSettled(cells);
      assert.match(settled[0].reason.message, /version: 1\.5 is not a version number/);
      assert.match(settled[1].reason.message, /is not a model name/);
      assert.ok(settled[1].reason.message.length < 250);
      assert.match(settled[2].reason.message, /version: -2 is not a version number/);
      assert.deepEqual(plain(settled[3].value), [["v2"]]);
      assert.deepEqual(plain(settled[4].value), [["v1"]]);
      const calls = batches(server).flatMap((r) => r.body.calls);
      assert.deepEqual(calls.map((c) => c.version), [2, null]);
    } finally {
      await server.close();
    }
  });

test("at most 4 requests in flight; the timeout runs from when a request is sent", async () => {
  const { server, excel, addin } = await setup((request) => ({ ...batchAnswer()(request),
    delay: 250 }));
  addin.ScoreBridge.state.timeoutMs = 600;
  try {
    // 12 parts of a large fill, each answered in 250 ms: 3 rounds of 4, ~750 ms in all, so every
    // request would time out if its 600 ms started when it was queued
    const cells = Array.from({ length: 12 }, (_, i) => excel.call("PREDICT",
      rows(5000).map((r) => [r[0] + 5000 * i, ...r.slice(1)]), "churn"));
    const spills = await Promise.all(cells);
    assert.equal(spills.length, 12);
    assert.equal(batches(server).length, 12);
    assert.ok(server.stats.maxInFlight <= 4, `${server.stats.maxInFlight} requests at once`);
    assert.ok(server.stats.maxInFlight >= 2);
  } finally {
    await server.close();
  }
});

test("a storage write that does not hold is reported, and the old key is never used again",
  async () => {
    const server = await harnessServer(batchAnswer());
    const storage = officeStorage([["scorebridge.url", server.url], [keyName(server.url), "old-key"]]);
    const addin = await loadAddin({ storage });
    const excel = new Excel(addin);
    try {
      await excel.call("PREDICT", [ROW], "churn");
      storage.failWrites = true;
      await assert.rejects(addin.ScoreBridge.setConfig(server.url, "new-key"),
        /could not be saved in the add-in's storage/);
      addin.ScoreBridge.clearCache();
      await excel.call("PREDICT", [ROW], "churn");
      assert.deepEqual(batches(server).map((r) => r.headers["x-api-key"]), ["old-key", "new-key"]);
      storage.failWrites = false;
      await addin.ScoreBridge.setConfig(server.url, "newest-key");
      assert.equal(storage.map.get(keyName(server.url)), "newest-key");
    } finally {
      await server.close();
    }
  });

test("a key is kept per server: changing the server never sends it to the new one", async () => {
  const first = await harnessServer(batchAnswer());
  const second = await harnessServer(batchAnswer(() => 2));
  const addin = await loadAddin({ base: first.url, key: KEY });
  const excel = new Excel(addin);
  try {
    await excel.call("PREDICT", [ROW], "churn");
    await addin.ScoreBridge.setConfig(second.url, null);  // the pane's key field left masked
    await assert.rejects(excel.call("PREDICT", [ROW], "churn"),
      (e) => e.code === "#N/A" && /No API key for http:\/\/127\.0\.0\.1:\d+/.test(e.message));
    assert.equal(second.requests.length, 0);
    await addin.ScoreBridge.setConfig(second.url, "second-key");
    assert.deepEqual(plain(await excel.call("PREDICT", [ROW], "churn")), [["v2"]]);
    await addin.ScoreBridge.setConfig(first.url, null);  // back: the first server's own key
    addin.ScoreBridge.clearCache();
    await excel.call("PREDICT", [ROW], "churn");
    assert.deepEqual(batches(first).map((r) => r.headers["x-api-key"]), [KEY, KEY]);
    assert.deepEqual(batches(second).map((r) => r.headers["x-api-key"]), ["second-key"]);
    assert.equal(await addin.ScoreBridge.hasKey(second.url), true);
    assert.equal(await addin.ScoreBridge.hasKey("http://127.0.0.1:9"), false);
  } finally {
    await first.close();
    await second.close();
  }
});

test("connecting and clearing the cache recalculate the workbook through Excel.run", async () => {
  const server = await harnessServer(batchAnswer());
  const api = fakeExcelApi();
  const addin = await loadAddin({ base: server.url, key: KEY, excel: api });
  try {
    assert.equal(await addin.ScoreBridge.recalculate(), true);
    assert.deepEqual(api.calculations, ["Full"]);
    // outside Excel (a plain browser page) there is nothing to recalculate, and no error
    const bare = await loadAddin({ base: server.url, key: KEY });
    assert.equal(await bare.ScoreBridge.recalculate(), false);
    assert.equal(bare.ScoreBridge.state.errors.length, 0);
  } finally {
    await server.close();
  }
});

test("ML.MODELS and ML.MODEL_INFO stream: re-polled on an interval, on connect, on a new version",
  async () => {
    let production = 1;
    const { server, addin, excel } = await setup((request, n) => {
      if (request.path === "/api/v1/models") {
        return { json: { models: [{ name: "churn", production_version: production,
          latest_version: production, description: "" }] } };
      }
      if (request.path === "/api/v1/models/churn") {
        return { json: { name: "churn", production_version: production, policy: null,
          signature: { output: { kind: "classification" } },
          versions: [{ version: production, created_at: "2026-01-01", metrics: {} }] } };
      }
      return batchAnswer(() => production)(request, n);
    }, { limits: { pollMs: 300 } });
    await excel.call("PREDICT", [ROW], "churn");  // a scoring answer from v1
    const models = excel.stream("MODELS");
    const info = excel.stream("MODEL_INFO", "churn");
    const version = (v) => (r) => Array.isArray(r) && r[1][1] === v;
    try {
      await models.until(version(1));
      await info.until(version(1));
      production = 2;  // the next poll sees it
      await models.until(version(2));
      await info.until(version(2));
      Object.assign(addin.ScoreBridge.state.limits, { pollMs: 60000 });
      await new Promise((r) => setTimeout(r, 400));  // let the last short poll pass
      production = 3;  // connect: re-polled at once
      await addin.ScoreBridge.setConfig(server.url, KEY);
      await models.until(version(3), 1000);
      await info.until(version(3), 1000);
      production = 4;  // a scoring answer shows a new version: re-polled at once
      await excel.call("PREDICT", [[1, ...ROW.slice(1)]], "churn");
      await models.until(version(4), 1000);
      await info.until(version(4), 1000);
    } finally {
      models.cancel();
      info.cancel();
      await server.close();
    }
  });

test("a compact answer: each cell gets its group's model, version and classes, flags default unset",
  async () => {
    // as /excel/v1/batch answers `compact: true`: what a model group shares is sent once
    const { server, excel } = await setup((request) => ({
      json: {
        groups: [{ model: "churn", version: 3, classes: ["no", "yes"] }],
        results: request.body.calls.map((c, i) => (i === 2 ? { group: 5, predictions: ["x"] } : {
          group: 0, predictions: c.values.map((r) => `row ${r[0]}`),
          probabilities: c.values.map((r) => [1 - r[0] / 10, r[0] / 10]),
        })),
      },
    }));
    try {
      const cells = [1, 2, 3].map((i) => excel.call("PREDICT", [[i, ...ROW.slice(1)]], "churn"));
      const proba = excel.call("PREDICT_PROBA", [[4, ...ROW.slice(1)]], "churn", "yes");
      const settled = await within(Promise.allSettled([...cells, proba]), 3000, "compact cells");
      assert.equal(batches(server).length, 1);
      assert.equal(batches(server)[0].body.compact, true, "the add-in asks for the compact form");
      assert.deepEqual(plain(settled[0].value), [["row 1"]]);
      assert.deepEqual(plain(settled[1].value), [["row 2"]]);
      // a result naming a group the answer does not have is no answer
      assert.equal(settled[2].status, "rejected");
      assert.equal(settled[2].reason.code, "#N/A");
      assert.deepEqual(plain(settled[3].value), [[0.4]]);
    } finally {
      await server.close();
    }
  });
