// The Google Sheets script, run in Node against the live server with a small model of the Apps
// Script services it uses, written from Google's reference pages:
//   UrlFetchApp.fetch(url, params) -> HTTPResponse (getResponseCode, getContentText, getHeaders);
//     a failure code throws unless muteHttpExceptions; an unreachable host throws. The call is
//     synchronous in Apps Script, so the shim makes the real HTTP call in a child process.
//   CacheService.getDocumentCache/getScriptCache/getUserCache -> Cache (get, getAll, put, putAll,
//     remove, removeAll): keys of at most 250 characters, values of at most 100 KB, expiry from 1 s
//     to 6 h (600 s by default), at most 1,000 items, and any item may vanish before it expires.
//     A cache outlives one execution: the shim's lives in `services`, shared by every "run".
//   PropertiesService.getDocumentProperties -> Properties (strings only).
//   SpreadsheetApp.getUi().prompt(title, prompt, buttons) -> PromptResponse (getResponseText,
//     getSelectedButton: OK, CANCEL or CLOSE); getActiveSpreadsheet().getSpreadsheetTimeZone().
//   Utilities.computeDigest (signed bytes), base64EncodeWebSafe, formatDate (Java patterns: only
//     the one the script uses is modelled; others throw).
// Where Google documents no behaviour (what an over-long expiry does), the shim throws.
import { test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";

const BASE = process.env.SCOREBRIDGE_TEST_URL;
const KEY = process.env.SCOREBRIDGE_TEST_KEY;
const ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"];
const BAD = [12, "abc", "month-to-month", "electronic-check", 3, "fiber"];
const source = readFileSync(new URL("../google_sheets/ScoreBridge.gs", import.meta.url), "utf8");

function syncFetch(url, options) {
  const request = {
    method: (options.method || "get").toUpperCase(),
    headers: { ...options.headers, "Content-Type": options.contentType || "application/x-www-form-urlencoded" },
    body: options.payload,
  };
  const script = `let input = "";
    process.stdin.on("data", (d) => { input += d; }).on("end", () => fetch(${JSON.stringify(url)},
      JSON.parse(input)).then(async (r) => process.stdout.write(JSON.stringify({
        status: r.status, headers: Object.fromEntries(r.headers), text: await r.text() })),
      () => process.stdout.write("null")));`;
  return JSON.parse(execFileSync(process.execPath, ["-e", script],
    { input: JSON.stringify(request), encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }));
}

class Cache {
  constructor(clock) {
    this.items = new Map();
    this.clock = clock;
    this.writes = 0;
  }

  static checkKey(key) {
    if (typeof key !== "string" || key.length > 250) throw new Error("Argument too large: key");
  }

  get(key) {
    Cache.checkKey(key);
    const item = this.items.get(key);
    if (!item || item.expires <= this.clock.now) {
      this.items.delete(key);
      return null;
    }
    return item.value;
  }

  getAll(keys) {
    const found = {};
    keys.forEach((key) => {
      const value = this.get(key);
      if (value !== null) found[key] = value;
    });
    return found;
  }

  put(key, value, seconds = 600) {
    Cache.checkKey(key);
    if (typeof value !== "string") throw new Error("Cache values are strings");
    if (Buffer.byteLength(value, "utf8") > 100 * 1024) throw new Error("Argument too large: value");
    if (!(seconds >= 1 && seconds <= 21600)) throw new Error("expirationInSeconds out of range");
    this.items.set(key, { value, expires: this.clock.now + seconds * 1000 });
    this.writes += 1;
    while (this.items.size > 1000) {  // the item nearest to expiry goes first
      let soonest = null;
      for (const [k, item] of this.items) if (!soonest || item.expires < soonest[1]) soonest = [k, item.expires];
      this.items.delete(soonest[0]);
    }
  }

  putAll(values, seconds) {
    Object.keys(values).forEach((key) => this.put(key, values[key], seconds));
  }

  remove(key) {
    this.items.delete(key);
  }

  removeAll(keys) {
    keys.forEach((key) => this.items.delete(key));
  }
}

/** What outlives one execution of the script: properties, caches, the clock, the server. */
function services({ properties = {}, timeZone = "UTC" } = {}) {
  const clock = { now: Date.now() };
  return {
    clock, timeZone, properties: { ...properties }, fetches: [], alerts: [], prompts: [], answers: [],
    caches: { document: new Cache(clock), script: new Cache(clock), user: new Cache(clock) },
  };
}

/** One execution of the script (a custom function call or a menu action) over `world`. */
function run(world) {
  const Button = { OK: "OK", CANCEL: "CANCEL", CLOSE: "CLOSE", YES: "YES", NO: "NO" };
  const ButtonSet = { OK: "OK", OK_CANCEL: "OK_CANCEL", YES_NO: "YES_NO", YES_NO_CANCEL: "YES_NO_CANCEL" };
  const ui = {
    Button, ButtonSet,
    createMenu: () => ({ addItem() { return this; }, addToUi() {} }),
    prompt(...args) {
      world.prompts.push(args);
      const answer = world.answers.shift();
      if (!answer) throw new Error("the test gave no answer for this prompt");
      return { getResponseText: () => answer.text ?? "", getSelectedButton: () => Button[answer.button] };
    },
    alert(...args) {
      world.alerts.push(args.length === 1 ? args[0] : args[1]);
      return Button.OK;
    },
  };
  const props = world.properties;
  const sandbox = {
    PropertiesService: {
      getDocumentProperties: () => ({
        getProperty: (k) => (k in props ? props[k] : null),
        getProperties: () => ({ ...props }),
        setProperty(k, v) { props[k] = String(v); return this; },
        setProperties(values, deleteAllOthers) {
          if (deleteAllOthers) Object.keys(props).forEach((k) => delete props[k]);
          Object.keys(values).forEach((k) => { props[k] = String(values[k]); });
          return this;
        },
        deleteProperty(k) { delete props[k]; return this; },
      }),
    },
    CacheService: {
      getDocumentCache: () => world.caches.document,
      getScriptCache: () => world.caches.script,
      getUserCache: () => world.caches.user,
    },
    UrlFetchApp: {
      fetch(url, params = {}) {
        world.fetches.push({ url, params });
        const answer = syncFetch(url, params);
        if (answer === null) throw new Error("Address unavailable: " + url);
        if (answer.status >= 400 && !params.muteHttpExceptions) {
          throw new Error(`Request failed for ${url} returned code ${answer.status}. Truncated server ` +
            `response: ${answer.text.slice(0, 100)} (use muteHttpExceptions option to examine full response)`);
        }
        return {
          getResponseCode: () => answer.status,
          getContentText: () => answer.text,
          getHeaders: () => ({ ...answer.headers }),
          getAllHeaders: () => ({ ...answer.headers }),
        };
      },
    },
    SpreadsheetApp: {
      getUi: () => ui,
      getActiveSpreadsheet: () => ({ getSpreadsheetTimeZone: () => world.timeZone }),
    },
    Utilities: {
      DigestAlgorithm: { MD5: "md5", SHA_1: "sha1", SHA_256: "sha256", SHA_512: "sha512" },
      Charset: { UTF_8: "utf8", US_ASCII: "ascii" },
      computeDigest: (algorithm, value, charset = "utf8") =>
        Array.from(createHash(algorithm).update(value, charset).digest(), (b) => (b > 127 ? b - 256 : b)),
      base64EncodeWebSafe: (data) =>
        Buffer.from(typeof data === "string" ? Buffer.from(data) : data.map((b) => b & 255))
          .toString("base64").replace(/\+/g, "-").replace(/\//g, "_"),
      formatDate(date, zone, pattern) {
        if (pattern !== "yyyy-MM-dd HH:mm:ss.SSS") throw new Error("pattern not modelled: " + pattern);
        const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
          timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
          hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
        }).formatToParts(date).map((p) => [p.type, p.value]));
        return `${parts.year.padStart(4, "0")}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:` +
          `${parts.second}.${parts.fractionalSecond}`;
      },
    },
  };
  vm.createContext(sandbox);
  vm.runInContext(source, sandbox, { filename: "ScoreBridge.gs" });
  return sandbox;
}

/** A date cell as Sheets hands it to a custom function: the instant of that wall-clock time in
 *  the spreadsheet's time zone. */
function sheetsDate(zone, y, m, d, h = 0, min = 0) {
  const wall = Date.UTC(y, m - 1, d, h, min);
  let instant = wall;
  for (let i = 0; i < 3; i++) {
    const shown = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", year: "numeric",
      month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" }).formatToParts(new Date(instant));
    const p = Object.fromEntries(shown.map((x) => [x.type, Number(x.value)]));
    instant += wall - Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
  }
  return new Date(instant);
}

const plain = (v) => JSON.parse(JSON.stringify(v));
const configured = (extra) => services({ properties: { SCOREBRIDGE_URL: BASE, SCOREBRIDGE_API_KEY: KEY }, ...extra });
const sent = (fetch) => JSON.parse(fetch.params.payload).calls[0];

test("PREDICT sends one batch request and returns one value per row", () => {
  const world = configured();
  const one = plain(run(world).PREDICT([ROW], "churn"));
  assert.equal(one.length, 1);
  assert.ok(["yes", "no"].includes(one[0][0]));
  const block = plain(run(world).PREDICT([ROW, ROW, ["", "", "", "", "", ""]], "churn"));
  assert.deepEqual(block, [one[0], one[0], [""]]);
  assert.equal(world.fetches.length, 2);
  assert.equal(world.fetches[0].url, BASE + "/excel/v1/batch");
  assert.equal(world.fetches[0].params.headers["X-API-Key"], KEY);
  assert.equal(world.fetches[0].params.muteHttpExceptions, true);
  assert.equal(plain(run(world).PREDICT(ROW))[0][0], one[0][0]);  // a single row range, default model
});

test("bad rows, bad arguments, bad models and a missing key give messages", () => {
  const world = configured();
  const mixed = plain(run(world).PREDICT([ROW, BAD], "churn"));
  assert.equal(mixed[1][0], "#VALUE! monthly_charges: expected a number, got 'abc'");
  assert.throws(() => run(world).PREDICT([BAD], "churn"), /^Error: monthly_charges/);
  assert.throws(() => run(world).PREDICT([ROW], "nope"), /no model named 'nope'/);
  assert.throws(() => run(world).PREDICT([ROW], "churn", 1.5), /version must be a whole number/);
  assert.equal(plain(run(world).PREDICT([ROW], "churn", 1))[0][0], mixed[0][0]);
  assert.equal(sent(world.fetches.at(-1)).version, 1);
  const wrong = services({ properties: { SCOREBRIDGE_URL: BASE, SCOREBRIDGE_API_KEY: "sb_000000000000_x" } });
  assert.throws(() => run(wrong).PREDICT([ROW], "churn"), /not valid or has been revoked/);
  assert.throws(() => run(services()).PREDICT([ROW], "churn"), /Set the ScoreBridge server/);
  const down = services({ properties: { SCOREBRIDGE_URL: "http://127.0.0.1:9", SCOREBRIDGE_API_KEY: KEY } });
  assert.throws(() => run(down).PREDICT([ROW], "churn"), /Cannot reach ScoreBridge at http:\/\/127.0.0.1:9/);
});

test("one formula is one fetch, and a recalculation that changes nothing fetches nothing", () => {
  const world = configured();
  const block = [ROW, BAD, ROW];
  const first = plain(run(world).PREDICT(block, "churn"));
  assert.equal(world.fetches.length, 1);
  assert.deepEqual(plain(run(world).PREDICT(block, "churn")), first);  // a new execution, cached
  assert.throws(() => run(world).PREDICT([BAD], "churn"), /monthly_charges/);
  assert.throws(() => run(world).PREDICT([BAD], "churn"), /monthly_charges/);  // the error too
  assert.equal(world.fetches.length, 2);
  run(world).PREDICT([ROW, BAD, [24, 70.5, "month-to-month", "electronic-check", 3, "fiber"]], "churn");
  run(world).PREDICT(block, "churn", 1);  // another version, another answer
  run(world).PREDICT(block);  // another model argument
  assert.equal(world.fetches.length, 5);
  world.clock.now += 601 * 1000;  // past the cache's lifetime
  run(world).PREDICT(block, "churn");
  assert.equal(world.fetches.length, 6);
  world.caches.document.items.clear();  // the cache may drop anything
  run(world).PREDICT(block, "churn");
  assert.equal(world.fetches.length, 7);
  const changedKey = configured();
  changedKey.caches = world.caches;
  changedKey.properties.SCOREBRIDGE_API_KEY = "sb_000000000000_x";
  assert.throws(() => run(changedKey).PREDICT(block, "churn"), /not valid/);  // not a cached answer
});

test("cached answers keep within Apps Script's limits: hashed keys, values in pieces", () => {
  const world = configured();
  const block = Array.from({ length: 6000 }, (_, i) => [i % 72, 20 + (i % 90), "month-to-month",
    "electronic-check", i % 5, "fiber"]);
  const first = plain(run(world).PREDICT(block, "churn"));
  assert.equal(first.length, 6000);
  const keys = [...world.caches.document.items.keys()];
  assert.ok(keys.length >= 3, keys);  // the count and at least two pieces
  keys.forEach((key) => assert.match(key, /^sb1:[A-Za-z0-9_-]{43}=(\.\d+)?$/));
  assert.ok(!keys.join().includes(KEY));
  assert.deepEqual(plain(run(world).PREDICT(block, "churn")), first);
  assert.equal(world.fetches.length, 1);
  const piece = keys.find((key) => key.endsWith(".1"));
  world.caches.document.remove(piece);  // one piece dropped: a miss, not a broken answer
  assert.deepEqual(plain(run(world).PREDICT(block, "churn")), first);
  assert.equal(world.fetches.length, 2);
});

test("dates go as the serial numbers the Excel add-in sends, on the spreadsheet's clock", () => {
  const world = configured({ timeZone: "Asia/Tokyo" });
  const dated = [sheetsDate("Asia/Tokyo", 1900, 1, 11), sheetsDate("Asia/Tokyo", 1900, 1, 1, 12)]
    .concat(ROW.slice(2));
  const numbers = [12, 2.5].concat(ROW.slice(2));  // the serials: a tenure of 12, charges of 2.5
  assert.deepEqual(plain(run(world).PREDICT([dated], "churn")), plain(run(world).PREDICT([numbers], "churn")));
  assert.deepEqual(sent(world.fetches[0]).values, [numbers]);
  assert.equal(world.fetches.length, 1);  // the same values: the second formula was answered from the cache
  run(world).PREDICT([[12, sheetsDate("Asia/Tokyo", 2024, 1, 1, 18)].concat(ROW.slice(2))], "churn");
  assert.equal(sent(world.fetches.at(-1)).values[0][1], 45292.75);
});

test("a cancelled or closed setup keeps the saved server and key", () => {
  const saved = { SCOREBRIDGE_URL: "https://sb.example.com", SCOREBRIDGE_API_KEY: "sb_old" };
  const setup = (answers) => {
    const world = services({ properties: saved });
    world.answers = answers;
    run(world).scorebridgeSetup();
    return world;
  };
  assert.deepEqual(setup([{ button: "CANCEL", text: "" }]).properties, saved);
  assert.deepEqual(setup([{ button: "CLOSE" }]).properties, saved);
  assert.deepEqual(setup([{ button: "OK", text: "https://new.example.com" }, { button: "CANCEL" }]).properties, saved);
  assert.deepEqual(setup([{ button: "OK", text: "" }, { button: "OK", text: "" }]).properties, saved);
  const noKey = setup([{ button: "OK", text: "https://other.example.com" }, { button: "OK", text: " " }]);
  assert.deepEqual(noKey.properties, saved);  // the old key never goes to a new server
  assert.match(noKey.alerts[0], /No API key for https:\/\/other.example.com/);
  const plainHttp = setup([{ button: "OK", text: "http://sb.example.com" }]);
  assert.deepEqual(plainHttp.properties, saved);
  assert.match(plainHttp.alerts[0], /must start with https/);
  const changed = setup([{ button: "OK", text: " https://new.example.com// " }, { button: "OK", text: " sb_new " }]);
  assert.deepEqual(changed.properties, { SCOREBRIDGE_URL: "https://new.example.com", SCOREBRIDGE_API_KEY: "sb_new" });
  const keyOnly = setup([{ button: "OK", text: "" }, { button: "OK", text: "sb_newer" }]);
  assert.deepEqual(keyOnly.properties, { ...saved, SCOREBRIDGE_API_KEY: "sb_newer" });
  assert.equal(keyOnly.prompts[1][2], "OK_CANCEL");
});

/** A proxy in front of a dead server, in its own process (the shim's fetch blocks this one). */
async function proxy(status, type, body) {
  const child = spawn(process.execPath, ["-e", `
    require("http").createServer((q, r) => { r.writeHead(${status}, { "Content-Type": ${JSON.stringify(type)} });
      r.end(${JSON.stringify(body)}); }).listen(0, "127.0.0.1", function () { console.log(this.address().port); });`]);
  const [line] = await once(child.stdout, "data");
  return { url: "http://127.0.0.1:" + String(line).trim(), stop: () => child.kill() };
}

test("an HTML error page from a proxy is a clear error, not a JSON syntax error", async () => {
  const gateway = await proxy(502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>");
  const portal = await proxy(200, "text/html; charset=utf-8", "<html>Sign in to the network</html>");
  try {
    const world = services({ properties: { SCOREBRIDGE_URL: gateway.url, SCOREBRIDGE_API_KEY: KEY } });
    assert.throws(() => run(world).PREDICT([ROW], "churn"),
      /^Error: ScoreBridge answered HTTP 502 \(text\/html, not JSON\): the server, or a proxy in front of it, is down/);
    assert.equal(world.caches.document.writes, 0);  // a failure is not cached
    const login = services({ properties: { SCOREBRIDGE_URL: portal.url, SCOREBRIDGE_API_KEY: KEY } });
    assert.throws(() => run(login).PREDICT([ROW], "churn"), /answered with text\/html instead of its JSON/);
  } finally {
    gateway.stop();
    portal.stop();
  }
});
