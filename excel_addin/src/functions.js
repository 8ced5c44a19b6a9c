/*
 * ScoreBridge custom functions for Excel on Windows, Mac and the web:
 *   =ML.PREDICT(A2:F2)   =ML.PREDICT_PROBA(A2:F2)   =ML.MODELS()   =ML.MODEL_INFO("churn")
 *   =ML.FEATURES("churn")
 *
 * Runs in the add-in's shared runtime (the task pane page loads this same script), served by the
 * ScoreBridge server itself.
 *
 * Calls are batched: every invocation is queued, and a short timer sends the whole queue as one
 * request (split to stay far below Excel on the web's ~5 MB limit), at most four requests at a
 * time. Results are cached per model version and range, so a recalculation that changes nothing
 * sends nothing. A bad row becomes #VALUE! with a message naming the column and the problem; a bad
 * argument fails its own cell; the other rows and cells are unaffected.
 *
 * Cells arrive as Excel passes them with allowErrorForDataTypeAny and
 * allowCustomDataForDataTypeAny set in functions.json: error cells as error objects, data types
 * (entities, formatted numbers) as objects; both are read here into plain JSON values.
 */
"use strict";

var ScoreBridge = (function () {
  const FLUSH_DELAY_MS = 25;
  const MAX_CACHED = 200000;
  const MAX_ERRORS = 50;
  const MAX_VERSION = 2147483647;
  const MODEL_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
  const STORAGE_URL = "scorebridge.url";
  const STORAGE_KEY = "scorebridge.apiKey"; // + "@" + server origin; alone, the key of old releases
  const STORAGE_SIGNIN = "scorebridge.signin"; // + "@" + server origin: the refresh token, who
  const REFRESH_AHEAD_MS = 60000; // an access token this close to its end is renewed first
  // the Excel errors the server reads as "the cell holds the Excel error ..." (its EXCEL_ERRORS)
  const SERVER_KNOWN_ERRORS = ["#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#NAME?", "#NULL!",
    "#SPILL!", "#CALC!", "#GETTING_DATA", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!",
    "#UNKNOWN!"];
  // Excel.ErrorCellValueType -> the error's text, for error objects without a basicValue
  const ERROR_TEXT = {
    Blocked: "#BLOCKED!", Busy: "#BUSY!", Calc: "#CALC!", Connect: "#CONNECT!", Div0: "#DIV/0!",
    Field: "#FIELD!", GettingData: "#GETTING_DATA", NotAvailable: "#N/A", Name: "#NAME?",
    Null: "#NULL!", Num: "#NUM!", Ref: "#REF!", Spill: "#SPILL!", Value: "#VALUE!",
  };
  const TRANSIENT = [429, 502, 503, 504];

  const state = {
    queue: [],
    timer: null,
    results: new Map(), // "model|servedVersion|range" -> result of one call
    served: new Map(), // "requested model|requested version" -> {model, version, at}
    latest: new Map(), // model -> the version of its last unpinned answer
    info: new Map(), // GET path -> {body, at}
    infoPending: new Map(), // GET path -> the request under way
    streams: new Set(), // MODELS / MODEL_INFO cells: {refresh}
    signalTimer: null,
    lastSignal: 0,
    errors: [],
    requests: 0,
    listeners: [],
    inFlight: 0,
    waiting: [], // requests waiting for one of the limits.inFlight slots
    notBefore: 0, // a Retry-After in force: no request is sent before this time
    pumpTimer: null,
    uncheckable: new Map(), // model -> when its version could not be checked (no read scope)
    cfg: null, // the settings in use (a promise), read once from storage
    sessionKeys: new Map(), // origin -> a key the storage did not keep: used until Excel closes
    signins: new Map(), // origin -> {access, accessUntil, refresh, refreshUntil, who} or null
    renewing: new Map(), // origin -> the refresh under way (one at a time)
    sessionBase: null, // likewise for the server address
    timeoutMs: 30000,
    limits: {
      rows: 5000, // rows in one request
      bytes: 1000000, // bytes in one request
      inFlight: 4, // requests at once
      retries: 2, // for 429, 502, 503, 504
      retryMaxMs: 10000, // a longer Retry-After is not waited for: the cell says when to retry
      retryDefaultMs: 1000, // the wait without a Retry-After
      versionTtlMs: 60000, // how long a model's version is trusted when it cannot be checked
      versionCheckMs: 5000, // older than this, a model's version is checked before a cached answer
      pollMs: 60000, // MODELS and MODEL_INFO re-poll
      signalMs: 1000, // at most one stream refresh this often for versions seen in answers
    },
  };

  // -- settings: the server address and one API key per server, in the add-in's storage --------

  function officeStorage() {
    return typeof OfficeRuntime !== "undefined" && OfficeRuntime.storage ? OfficeRuntime.storage :
      null;
  }

  function webStorage() {
    try {
      return typeof localStorage !== "undefined" ? localStorage : null;
    } catch {
      return null;
    }
  }

  /** OfficeRuntime.storage where it exists (Excel), else the page's localStorage: one store,
   *  never both, so an old copy in one cannot shadow a new value in the other. */
  async function storageGet(name) {
    const office = officeStorage();
    if (office) return (await office.getItem(name)) || null;
    const web = webStorage();
    return web ? web.getItem(name) : null;
  }

  /** Writes, then reads back: a write that did not hold is an error, never silent. */
  async function storageSet(name, value) {
    const office = officeStorage();
    const web = webStorage();
    if (office) {
      await office.setItem(name, value);
      if ((await office.getItem(name)) !== value) throw new Error("it did not keep the value");
      if (web) web.removeItem(name); // a copy written by an older release
      return;
    }
    if (!web) throw new Error("there is no storage here");
    web.setItem(name, value);
    if (web.getItem(name) !== value) throw new Error("it did not keep the value");
  }

  async function storageRemove(name) {
    try {
      const office = officeStorage();
      if (office) await office.removeItem(name);
      const web = webStorage();
      if (web) web.removeItem(name);
    } catch {
      /* nothing to do: the caller no longer reads it */
    }
  }

  function pageOrigin() {
    const origin = typeof location !== "undefined" ? location.origin : "";
    return origin && origin !== "null" ? origin : "";
  }

  function originOf(base) {
    try {
      const url = new URL(base);
      return url.protocol === "https:" || url.protocol === "http:" ? url.origin : null;
    } catch {
      return null;
    }
  }

  function tidyBase(base) {
    return String(base || "").trim().replace(/\/+$/, "");
  }

  function keyName(origin) {
    return STORAGE_KEY + "@" + origin;
  }

  /** A key saved by an older release belongs to no server: it is kept only for the server that
   *  serves the add-in, the one it was most likely saved for, and removed either way. */
  async function adoptOldKey(origin) {
    const old = await storageGet(STORAGE_KEY);
    if (!old) return "";
    await storageRemove(STORAGE_KEY);
    if (origin !== pageOrigin()) return "";
    try {
      await storageSet(keyName(origin), old);
    } catch {
      state.sessionKeys.set(origin, old);
    }
    return old;
  }

  async function readConfig() {
    const base = tidyBase(state.sessionBase || (await storageGet(STORAGE_URL)) || pageOrigin());
    const origin = originOf(base);
    let key = "";
    if (origin) {
      key = state.sessionKeys.get(origin) || (await storageGet(keyName(origin))) || "";
      if (!key) key = await adoptOldKey(origin);
    }
    return { base: base, origin: origin, key: key };
  }

  /** The server URL (this page's origin unless set) and the API key saved for that server,
   *  kept in the add-in's storage: never in the workbook, never sent to another server. */
  function config() {
    if (!state.cfg) {
      state.cfg = readConfig().catch(function (e) {
        state.cfg = null;
        throw e;
      });
    }
    return state.cfg;
  }

  async function hasKey(base) {
    const origin = originOf(tidyBase(base));
    if (!origin) return false;
    return Boolean(state.sessionKeys.get(origin) || (await storageGet(keyName(origin))));
  }

  async function saveBase(base) {
    state.sessionBase = null;
    try {
      if (base) await storageSet(STORAGE_URL, base);
      else await storageRemove(STORAGE_URL);
    } catch (e) {
      state.sessionBase = base || pageOrigin();
      throw new Error("The server address could not be saved in the add-in's storage (" +
        e.message + "): it is used until Excel closes", { cause: e });
    }
  }

  async function saveKey(origin, key) {
    state.sessionKeys.delete(origin);
    try {
      await storageSet(keyName(origin), key);
    } catch (e) {
      state.sessionKeys.set(origin, key); // the new key, never the old one the storage kept
      await storageRemove(keyName(origin));
      throw new Error("The API key could not be saved in the add-in's storage (" + e.message +
        "): it is used until Excel closes; save it again to keep it", { cause: e });
    }
  }

  /** Saves the server address (null: unchanged) and the key for that server (null: the one
   *  already saved for it, if any). Rejects when storage did not keep a value; the new values
   *  are used for this session all the same. */
  async function setConfig(base, key) {
    const tidy = base === undefined || base === null ? null : tidyBase(base);
    if (tidy && !originOf(tidy)) {
      throw new Error("The server must be an address starting with https:// (or http://)");
    }
    const before = state.cfg ? (await state.cfg.catch(function () { return {}; })).origin : null;
    state.cfg = null;
    clearCache();
    const problems = [];
    if (tidy !== null) await saveBase(tidy).catch(function (e) { problems.push(e.message); });
    state.cfg = null;
    const origin = (await config()).origin;
    if (key !== undefined && key !== null && origin) {
      await saveKey(origin, key).catch(function (e) { problems.push(e.message); });
      state.cfg = null;
    }
    if (origin !== before) state.latest.clear();
    refreshStreams();
    if (problems.length) throw new Error(problems.join("; "));
    return config();
  }

  function clearCache() {
    state.results.clear();
    state.served.clear();
    state.info.clear();
    state.uncheckable.clear();
  }

  // -- errors and the task pane's list --------------------------------------------------------

  function notify() {
    state.listeners.forEach(function (fn) {
      try {
        fn(state);
      } catch {
        /* a broken listener must not break scoring */
      }
    });
  }

  function logError(context, message) {
    state.errors.unshift({ time: new Date().toISOString(), context: context, message: message });
    state.errors.length = Math.min(state.errors.length, MAX_ERRORS);
    notify();
  }

  function fail(code, message) {
    const text = String(message).length > 250 ? String(message).slice(0, 249) + "…" :
      String(message);
    if (typeof CustomFunctions === "undefined") { // the task pane opened outside Excel
      const error = new Error(text);
      error.code = code === "notAvailable" ? "#N/A" : "#VALUE!";
      return error;
    }
    return new CustomFunctions.Error(CustomFunctions.ErrorCode[code], text);
  }

  function short(value) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 40 ? text.slice(0, 39) + "…" : text;
  }

  function inAbout(ms) {
    const s = Math.max(1, Math.round(ms / 1000));
    return s < 90 ? s + " s" : Math.round(s / 60) + " min";
  }

  // -- requests: at most limits.inFlight at once, each timed from when it is sent --------------

  function pump() {
    const wait = state.notBefore - Date.now();
    if (wait > 0) {
      if (state.pumpTimer === null) {
        state.pumpTimer = setTimeout(function () { state.pumpTimer = null; pump(); }, wait);
      }
      return;
    }
    while (state.waiting.length && state.inFlight < state.limits.inFlight) {
      state.inFlight += 1;
      state.waiting.shift()();
    }
  }

  function acquire() {
    return new Promise(function (resolve) {
      state.waiting.push(resolve);
      pump();
    });
  }

  function release() {
    state.inFlight -= 1;
    pump();
  }

  /** Retry-After as milliseconds (seconds or an HTTP date), or null. */
  function retryAfter(header) {
    if (!header) return null;
    if (/^\s*\d+\s*$/.test(header)) return Number(header) * 1000;
    const at = Date.parse(header);
    return isNaN(at) ? null : Math.max(0, at - Date.now());
  }

  async function readProblem(response) {
    try {
      return await response.json();
    } catch {
      return {}; // not JSON (a proxy's error page)
    }
  }

  /** One request, sent once a slot is free; its timeout starts when it is sent. */
  async function attempt(cfg, path, opts) {
    const credential = await credentialHeaders(cfg);
    await acquire();
    const controller = new AbortController();
    const timer = setTimeout(function () { controller.abort(); }, state.timeoutMs);
    state.requests += 1;
    try {
      const headers = Object.assign({}, opts.headers || {},
        credential, { "X-ScoreBridge-Client": "excel" });
      const response = await fetch(cfg.base + path, {
        method: opts.method || "GET", headers: headers, body: opts.body, signal: controller.signal,
      });
      if (response.ok) return { ok: true, body: await response.json() };
      return { ok: false, status: response.status, problem: await readProblem(response),
        wait: retryAfter(response.headers.get("Retry-After")) };
    } catch (e) {
      const why = e && e.name === "AbortError"
        ? "ScoreBridge did not answer within " + state.timeoutMs / 1000 + " s"
        : e instanceof SyntaxError ? "ScoreBridge's answer could not be read"
          : "Cannot reach ScoreBridge at " + cfg.base;
      logError(path, why);
      throw fail("notAvailable", why);
    } finally {
      clearTimeout(timer);
      release();
    }
  }

  // -- sign-in: an access token in memory, renewed with a refresh token from the add-in's storage

  function signinName(origin) {
    return STORAGE_SIGNIN + "@" + origin;
  }

  /** The sign-in kept for a server (memory first, then the add-in's storage), or null. */
  async function signedIn(origin) {
    if (!origin) return null;
    if (!state.signins.has(origin)) {
      let kept;
      try {
        kept = JSON.parse((await storageGet(signinName(origin))) || "null");
      } catch {
        kept = null; // unreadable: as if signed out
      }
      const live = kept && kept.refresh && kept.refreshUntil > Date.now();
      state.signins.set(origin, live ? { access: null, accessUntil: 0, refresh: kept.refresh,
        refreshUntil: kept.refreshUntil, who: kept.who } : null);
    }
    const s = state.signins.get(origin);
    return s && s.refreshUntil > Date.now() ? s : null;
  }

  /** Takes a token response (RFC 6749 section 5.1): the access token stays in memory, the
   *  refresh token and who signed in go to the add-in's storage (never the workbook). */
  async function adoptGrant(origin, grant) {
    const now = Date.now();
    const s = { access: grant.access_token, accessUntil: now + grant.expires_in * 1000,
      refresh: grant.refresh_token, refreshUntil: now + grant.refresh_expires_in * 1000,
      who: grant.who };
    state.signins.set(origin, s);
    try {
      await storageSet(signinName(origin), JSON.stringify(
        { refresh: s.refresh, refreshUntil: s.refreshUntil, who: s.who }));
    } catch (e) {
      logError("sign-in", "The sign-in could not be kept in the add-in's storage (" + e.message +
        "): it is used until Excel closes");
    }
    return s;
  }

  async function forgetSignIn(origin) {
    state.signins.set(origin, null);
    await storageRemove(signinName(origin));
  }

  async function tokenRequest(base, body) {
    let response;
    try {
      response = await fetch(base + "/auth/addin/token", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch {
      throw fail("notAvailable", "Cannot reach ScoreBridge at " + base + " to sign in");
    }
    if (response.ok) return response.json();
    const problem = await readProblem(response);
    const error = fail("notAvailable", (problem.detail || "HTTP " + response.status) +
      ": open the ScoreBridge pane (Home tab) and Sign in again");
    error.status = response.status;
    throw error;
  }

  /** The access token for a server, renewed first when it is about to end; one renewal at a
   *  time per server (a refresh token is good once). A refused renewal ends the sign-in. */
  async function accessToken(cfg, s) {
    if (s.access && s.accessUntil - Date.now() > REFRESH_AHEAD_MS) return s.access;
    if (!state.renewing.has(cfg.origin)) {
      const renewal = tokenRequest(cfg.base, { grant_type: "refresh_token",
        refresh_token: s.refresh }).then(function (grant) {
        return adoptGrant(cfg.origin, grant);
      }, async function (e) {
        if (e.status === 400 || e.status === 401) await forgetSignIn(cfg.origin);
        logError("sign-in", e.message);
        throw e;
      }).finally(function () { state.renewing.delete(cfg.origin); });
      state.renewing.set(cfg.origin, renewal);
    }
    return (await state.renewing.get(cfg.origin)).access;
  }

  /** The headers that say who is asking: the sign-in where there is one, else the API key. */
  async function credentialHeaders(cfg) {
    const s = await signedIn(cfg.origin);
    if (s) return { Authorization: "Bearer " + (await accessToken(cfg, s)) };
    return cfg.key ? { "X-API-Key": cfg.key } : {};
  }

  /** The task pane's code from the sign-in dialog, with the verifier of its challenge. */
  async function redeemSignIn(code, verifier) {
    const cfg = await config();
    const grant = await tokenRequest(cfg.base, { grant_type: "authorization_code", code: code,
      code_verifier: verifier });
    clearCache();
    return adoptGrant(cfg.origin, grant);
  }

  /** Signs out of this server here: the server ends the refresh and access tokens. */
  async function signOut() {
    const cfg = await config();
    const s = await signedIn(cfg.origin);
    await forgetSignIn(cfg.origin);
    clearCache();
    if (!s) return;
    try {
      await fetch(cfg.base + "/auth/addin/revoke", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: s.refresh }) });
    } catch {
      logError("sign-in", "ScoreBridge could not be told of the sign-out; its tokens end by themselves");
    }
  }

  /** The error a failed answer shows in its cells: #N/A for a busy or unavailable server and for
   *  a key it refuses (with what to do), #VALUE! for what was asked. */
  function httpError(status, problem, wait) {
    const detail = problem.detail || problem.title || "HTTP " + status;
    let error;
    if (status === 401 || status === 403) {
      error = fail("notAvailable", detail + ": open the ScoreBridge pane (Home tab) and Sign in " +
        "again, or Save and connect with a valid key");
    } else if (TRANSIENT.indexOf(status) >= 0) {
      const what = status === 429 ? "busy" : "unavailable";
      error = fail("notAvailable", "ScoreBridge is " + what + " (HTTP " + status + "): retry " +
        (wait !== null ? "in about " + inAbout(wait) : "in a moment") + " (recalculate)");
    } else {
      error = fail(status === 404 ? "notAvailable" : "invalidValue", detail);
    }
    error.status = status;
    error.problem = problem;
    return error;
  }

  /** A GET or POST to ScoreBridge; 429/502/503/504 are retried (at most limits.retries times,
   *  waiting what Retry-After says up to limits.retryMaxMs); other failures reject. */
  async function request(path, options) {
    const cfg = await config();
    if (!cfg.origin) {
      throw fail("notAvailable", "The server address '" + short(cfg.base) + "' is not a web " +
        "address: open the ScoreBridge pane (Home tab) and correct it");
    }
    if (!cfg.key && !(await signedIn(cfg.origin))) {
      throw fail("notAvailable", "No API key for " + cfg.origin + " and no sign-in: open the " +
        "ScoreBridge pane (Home tab), then Sign in, or enter a key and Save and connect");
    }
    for (let tries = 0; ; tries += 1) {
      const outcome = await attempt(cfg, path, options || {});
      if (outcome.ok) return outcome.body;
      const transient = TRANSIENT.indexOf(outcome.status) >= 0;
      const wait = outcome.wait !== null ? outcome.wait : state.limits.retryDefaultMs;
      if (!transient || tries >= state.limits.retries || wait > state.limits.retryMaxMs) {
        const error = httpError(outcome.status, outcome.problem, outcome.wait);
        if (!(options && options.quiet)) logError(path, error.message);
        throw error;
      }
      state.notBefore = Math.max(state.notBefore, Date.now() + wait); // every request waits
    }
  }

  // -- model information, and the cells that show it ------------------------------------------

  /** A GET answer, cached for maxAge; requests for the same path at once share one. */
  function getInfo(path, maxAge, quiet) {
    const age = maxAge === undefined ? 60000 : maxAge;
    const hit = state.info.get(path);
    if (hit && Date.now() - hit.at < age) return Promise.resolve(hit.body);
    if (state.infoPending.has(path)) return state.infoPending.get(path);
    const pending = request(path, { quiet: quiet }).then(function (body) {
      state.info.set(path, { body: body, at: Date.now() });
      noteProduction(body);
      return body;
    }).finally(function () { state.infoPending.delete(path); });
    state.infoPending.set(path, pending);
    return pending;
  }

  /** A model's production version, as a GET of the model or the list shows it: cached answers of
   *  another version for it are dropped (a rollback is followed as soon as it is seen). */
  function noteProduction(body) {
    const models = body && Array.isArray(body.models) ? body.models : body && body.name ? [body] :
      [];
    models.forEach(function (m) {
      if (m.production_version === undefined || m.production_version === null) return;
      state.served.forEach(function (s, requested) {
        if (s.model === m.name && !s.pinned && s.version !== m.production_version) {
          state.served.delete(requested);
        }
      });
    });
  }

  /** Re-runs every MODELS / MODEL_INFO cell now (on connect, on clearing the cache). */
  function refreshStreams() {
    state.info.clear();
    state.lastSignal = Date.now();
    state.streams.forEach(function (s) { s.refresh(); });
  }

  /** A version change seen in a scoring answer: the streams re-poll soon, at most once a
   *  limits.signalMs (under a canary, answers alternate between two versions). */
  function signalVersionChange() {
    if (state.signalTimer !== null) return;
    const wait = Math.max(0, state.lastSignal + state.limits.signalMs - Date.now());
    state.signalTimer = setTimeout(function () {
      state.signalTimer = null;
      refreshStreams();
    }, wait);
  }

  /** A streaming cell: `produce` runs now, every limits.pollMs and on refresh; a result is set
   *  only when it differs from the last. */
  function stream(invocation, produce) {
    let timer = null;
    let last = null;
    let stopped = false;
    async function run() {
      clearTimeout(timer);
      let value;
      try {
        value = await produce();
      } catch (e) {
        value = e;
      }
      if (stopped) return;
      const seen = Array.isArray(value) ? JSON.stringify(value) : "error " + value.message;
      if (seen !== last) {
        last = seen;
        invocation.setResult(value);
      }
      clearTimeout(timer);
      timer = setTimeout(run, state.limits.pollMs);
    }
    const entry = { refresh: run };
    invocation.onCanceled = function () {
      stopped = true;
      clearTimeout(timer);
      state.streams.delete(entry);
    };
    state.streams.add(entry);
    run();
  }

  // -- cells: what Excel passes, as JSON values ---------------------------------------------

  /** A cell that cannot be sent: its row becomes #VALUE! with `why`, the rest is scored. */
  function Unsendable(why) {
    this.why = why;
  }

  function errorText(value) {
    if (typeof value.basicValue === "string" && value.basicValue.charAt(0) === "#") {
      return value.basicValue;
    }
    return ERROR_TEXT[value.errorType] || "#" + String(value.errorType || "ERROR").toUpperCase() +
      "!";
  }

  /** An error cell: sent as its text, which the server reports per row and column; an error the
   *  server does not know is refused here, so it is never scored as text. */
  function errorCell(text) {
    return SERVER_KNOWN_ERRORS.indexOf(text) >= 0 ? text :
      new Unsendable("the cell holds the Excel error " + text);
  }

  /** One cell as a JSON value. Empty cells (null, undefined, "", an Empty value) are all null.
   *  Data types give their basic value (an entity its text); error cells their error text. */
  function readCell(value) {
    if (value === undefined || value === null || value === "") return null;
    if (typeof value !== "object") {
      return typeof value === "number" && !isFinite(value) ?
        new Unsendable("the number is not finite") : value;
    }
    if (typeof value.code === "string" && value.code.charAt(0) === "#") { // a CustomFunctions.Error
      return errorCell(value.code);
    }
    switch (value.type) {
      case "Error": return errorCell(errorText(value));
      case "Empty": return null;
      case "Entity": case "LinkedEntity": return readCell(value.text);
      case "String": case "Boolean": case "Double": case "FormattedNumber":
        return readCell(value.basicValue);
      default: break;
    }
    if (value.basicType !== "Error" && value.basicValue !== null &&
      ["string", "number", "boolean"].indexOf(typeof value.basicValue) >= 0) {
      return readCell(value.basicValue);
    }
    return new Unsendable("a " + (value.type || "structured") + " value cannot be scored");
  }

  /** A range as rows of JSON values, and the cells that could not be sent (by row). */
  function readRange(range) {
    const rows = Array.isArray(range) ? range : [[range]];
    const problems = new Map();
    const values = rows.map(function (row, i) {
      return (Array.isArray(row) ? row : [row]).map(function (cell, j) {
        const value = readCell(cell);
        if (!(value instanceof Unsendable)) return value;
        if (!problems.has(i)) problems.set(i, []);
        problems.get(i).push({ column: j, why: value.why });
        return null;
      });
    });
    return { values: values, problems: problems };
  }

  // -- arguments: checked here, so a bad one fails its own cell, not the whole batch ----------

  /** Nothing given: omitted, an empty cell, or the 0 older desktop builds pass for one. */
  function absent(value) {
    return value === undefined || value === null || value === "" || value === 0 ||
      (typeof value === "object" && value.type === "Empty");
  }

  function modelArg(model) {
    if (absent(model)) return "";
    if (typeof model !== "string" || !MODEL_NAME.test(model)) {
      throw fail("invalidValue", "model: '" + short(model) + "' is not a model name (a lower-case " +
        "letter first, then lower-case letters, digits, - or _; at most 64)");
    }
    return model;
  }

  function versionArg(version) {
    if (absent(version)) return null;
    const n = typeof version === "string" && version.trim() !== "" ? Number(version) : version;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_VERSION) {
      throw fail("invalidValue", "version: " + short(version) + " is not a version number (a " +
        "whole number from 1; leave it empty for the production version)");
    }
    return n;
  }

  // -- scoring: the queue, the cache, the batches -----------------------------------------------

  function schedule() {
    if (state.timer === null) state.timer = setTimeout(flush, FLUSH_DELAY_MS);
  }

  /** Whether a cached answer may still be used: a pinned version's answers never change; an
   *  unpinned one's are re-checked (one small GET per model) once older than versionCheckMs. */
  async function stillServed(requested) {
    const served = state.served.get(requested);
    if (!served) return null;
    const age = Date.now() - served.at;
    if (served.pinned || age < state.limits.versionCheckMs) return served;
    const failed = state.uncheckable.get(served.model);
    if (failed === undefined || Date.now() - failed >= state.limits.versionTtlMs) {
      try {
        const body = await getInfo("/api/v1/models/" + encodeURIComponent(served.model),
          state.limits.versionCheckMs, true);
        if (body.production_version !== served.version) return null; // noteProduction dropped it
        served.at = Date.now();
        return served;
      } catch {
        state.uncheckable.set(served.model, Date.now());
      }
    }
    // no read scope or no answer: the version is trusted for versionTtlMs, as before
    return age < state.limits.versionTtlMs ? served : null;
  }

  /** One call's result, from the cache when its model version is known and current. */
  async function score(model, version, values, header, explain) {
    const requested = model + "|" + (version === null ? "" : version);
    const rangeKey = (explain ? "explain:" + explain + "|" : "") +
      JSON.stringify(header ? [header].concat(values) : values);
    const served = await stillServed(requested);
    const hit = served && state.results.get(served.model + "|" + served.version + "|" + rangeKey);
    if (hit) return hit;
    return new Promise(function (resolve, reject) {
      state.queue.push({
        model: model, version: version, values: values, header: header || null,
        key: rangeKey, requested: requested, bytes: rangeKey.length + 64, explain: explain || null,
        resolve: resolve, reject: reject,
      });
      schedule();
    });
  }

  /** A range larger than one request holds is sent in parts; the first row goes with every part
   *  as a header hint, so a header row is recognised in each. The first part is sent first, the
   *  others pinned to the version that answered it: under a canary, routing is per request, and
   *  one range must not mix versions. */
  async function scoreRange(model, version, values, explain) {
    const size = state.limits.rows;
    if (values.length <= size) return score(model, version, values, null, explain);
    const first = await score(model, version, values.slice(0, size), null, explain);
    const parts = [first];
    for (let start = size; start < values.length; start += size) {
      parts.push(score(model, first.version, values.slice(start, start + size), values[0],
        explain));
    }
    return merge(await Promise.all(parts));
  }

  function merge(results) {
    const first = results[0];
    const merged = Object.assign({}, first,
      { predictions: [], probabilities: [], errors: [], blank: [], reasons: [] });
    let offset = 0;
    results.forEach(function (part) {
      if (part.version !== first.version) {
        throw fail("notAvailable", "The model version changed during the calculation: recalculate");
      }
      merged.predictions = merged.predictions.concat(part.predictions);
      merged.probabilities = merged.probabilities.concat(part.probabilities || []);
      merged.reasons = merged.reasons.concat(part.reasons || []);
      (part.errors || []).forEach(function (e) {
        merged.errors.push(Object.assign({}, e, { row: e.row + offset }));
      });
      (part.blank || []).forEach(function (i) { merged.blank.push(i + offset); });
      offset += part.predictions.length;
    });
    return merged;
  }

  async function flush() {
    state.timer = null;
    const items = state.queue;
    state.queue = [];
    const chunks = [];
    let current = [];
    let rows = 0;
    let bytes = 0;
    items.forEach(function (item) {
      const n = item.values.length;
      if (current.length && (rows + n > state.limits.rows ||
        bytes + item.bytes > state.limits.bytes)) {
        chunks.push(current);
        current = [];
        rows = 0;
        bytes = 0;
      }
      current.push(item);
      rows += n;
      bytes += item.bytes;
    });
    if (current.length) chunks.push(current);
    await Promise.all(chunks.map(send));
  }

  function batchBody(calls) {
    return JSON.stringify({
      probabilities: true,
      compact: true, // each answer names its group (model, version, classes) instead of repeating it
      calls: calls.map(function (c) {
        const call = { model: c.model || null, version: c.version, values: c.values };
        if (c.header) call.header = c.header;
        if (c.explain) call.explain = c.explain;
        return call;
      }),
    });
  }

  /** The calls a whole-request 400 names ("body field 'calls.3.version' must be ..."), each with
   *  its message; empty when it names none. */
  function blamedCalls(problem, count) {
    const blamed = new Map();
    const messages = [problem.detail].concat((problem.errors || []).map(function (e) {
      return e && (e.message || e.detail);
    }));
    messages.forEach(function (text) {
      const m = /'calls\.(\d+)(?:\.([^']*))?'\s*(.*)$/.exec(String(text || ""));
      if (!m || Number(m[1]) >= count) return;
      const what = (m[2] ? m[2] + " " : "") + m[3].replace(/\s*\(and \d+ more\)$/, "");
      if (!blamed.has(Number(m[1]))) blamed.set(Number(m[1]), what);
    });
    return blamed;
  }

  /** Sends one batch. A whole-request 400 that names calls fails those cells and re-sends the
   *  others; one that names none fails each cell with its message. */
  async function send(chunk) {
    let live = chunk;
    while (live.length) {
      let answer;
      try {
        answer = await request("/excel/v1/batch", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: batchBody(live),
        });
      } catch (e) {
        const blamed = e.status === 400 || e.status === 422 ? blamedCalls(e.problem, live.length) :
          new Map();
        if (!blamed.size) {
          live.forEach(function (c) { c.reject(e); });
          return;
        }
        blamed.forEach(function (message, i) { live[i].reject(fail("invalidValue", message)); });
        live = live.filter(function (c, i) { return !blamed.has(i); });
        continue;
      }
      settle(live, answer);
      return;
    }
  }

  function settle(calls, answer) {
    const results = answer && Array.isArray(answer.results) ? answer.results : [];
    if (results.length < calls.length) {
      logError("/excel/v1/batch", "ScoreBridge answered " + results.length + " of " + calls.length +
        " calls in one request");
    }
    const groups = answer && Array.isArray(answer.groups) ? answer.groups : null;
    calls.forEach(function (call, i) {
      const result = groups ? expand(results[i], groups) : results[i];
      if (!result || (!result.error && !Array.isArray(result.predictions))) {
        call.reject(fail("notAvailable", "ScoreBridge answered " + results.length + " of " +
          calls.length + " calls in one request: recalculate"));
        return;
      }
      settleCall(call, result);
    });
  }

  /** A compact result (``compact: true``) as the full one: its group's model, version and
   *  classes, and the flags the server leaves out when unset. Null when it names no group. */
  function expand(result, groups) {
    if (!result || result.error) return result;
    const group = groups[result.group];
    if (!group) return null;
    const full = { model: group.model, version: group.version, header: !!result.header,
      predictions: result.predictions, errors: result.errors || [], blank: result.blank || [] };
    if (result.probabilities) {
      full.probabilities = result.probabilities;
      full.classes = group.classes;
    }
    if (result.reasons) full.reasons = result.reasons;
    return full;
  }

  function settleCall(call, result) {
    if (result.error) {
      logError(call.model || "(default model)", result.error);
      call.reject(fail(result.status === 404 ? "notAvailable" : "invalidValue", result.error));
      return;
    }
    const model = result.model || call.model;
    if (call.version === null) noteVersion(model, result.version);
    state.served.set(call.requested, { model: model, version: result.version, at: Date.now(),
      pinned: call.version !== null });
    if (state.results.size >= MAX_CACHED) state.results.clear();
    state.results.set(model + "|" + result.version + "|" + call.key, result);
    (result.errors || []).forEach(function (e) {
      logError(model + " row " + (e.row + 1), describe(e));
    });
    call.resolve(result);
  }

  /** An unpinned answer from another version than the last: that model's cached answers are
   *  dropped, and the MODELS / MODEL_INFO cells re-poll. */
  function noteVersion(model, version) {
    const before = state.latest.get(model);
    state.latest.set(model, version);
    if (before === undefined || before === version) return;
    const prefix = model + "|";
    state.results.forEach(function (r, key) {
      if (key.indexOf(prefix) === 0) state.results.delete(key);
    });
    state.served.forEach(function (s, requested) {
      if (s.model === model && !s.pinned) state.served.delete(requested);
    });
    signalVersionChange();
  }

  function describe(error) {
    return error.column ? error.column + ": " + error.message : error.message;
  }

  /** Rows of a result as a 2-D array, with a #VALUE! error (and its message) in bad rows: rows
   *  the server reported, and rows with a cell that could not be sent (`problems`, by row of the
   *  range as given, whose first row may be the header). */
  function toRows(result, pick, problems, header) {
    const offset = result.header ? 1 : 0;
    const issues = {};
    (result.errors || []).forEach(function (e) {
      issues[e.row] = issues[e.row] ? issues[e.row] + "; " + describe(e) : describe(e);
    });
    const local = {};
    (problems || new Map()).forEach(function (list, row) {
      local[row - offset] = list.map(function (p) {
        const name = result.header && header && header[p.column] ? String(header[p.column]) :
          "column " + (p.column + 1);
        return name + ": " + p.why;
      }).join("; ");
    });
    const blank = {};
    (result.blank || []).forEach(function (i) { blank[i] = true; });
    const rows = result.predictions.map(function (prediction, i) {
      const why = local[i] || issues[i];
      if (local[i] === undefined && blank[i]) return pick.width ? new Array(pick.width).fill("") : [""];
      if (why !== undefined || prediction === null) {
        const error = fail("invalidValue", why || "This row could not be scored");
        return pick.width ? new Array(pick.width).fill(error) : [error];
      }
      return pick(result, i);
    });
    if (rows.length === 0) throw fail("invalidValue", "No data rows in the range");
    // a single cell with an error shows the error itself (values are never objects)
    if (rows.length === 1 && rows[0][0] !== null && typeof rows[0][0] === "object") throw rows[0][0];
    return rows;
  }

  /** A full recalculation of the workbook, through Excel's API (the shared runtime): cells
   *  answered before a new key or server, or before the cache was cleared, are asked again.
   *  False outside Excel. */
  async function recalculate() {
    if (typeof Excel === "undefined" || !Excel || typeof Excel.run !== "function") return false;
    try {
      await Excel.run(async function (context) {
        context.workbook.application.calculate(Excel.CalculationType.full);
        await context.sync();
      });
      return true;
    } catch (e) {
      logError("recalculation", "Excel did not recalculate: " + ((e && e.message) || e));
      return false;
    }
  }

  return {
    state: state, config: config, setConfig: setConfig, hasKey: hasKey, clearCache: clearCache,
    signedIn: signedIn, redeemSignIn: redeemSignIn, signOut: signOut,
    flush: flush, request: request, getInfo: getInfo, scoreRange: scoreRange, readRange: readRange,
    modelArg: modelArg, versionArg: versionArg, toRows: toRows, fail: fail, logError: logError,
    stream: stream, refreshStreams: refreshStreams, recalculate: recalculate,
    onChange: function (fn) { state.listeners.push(fn); },
  };
})();

/** Reads, checks and scores a formula's range: the range as rows, the model's result. */
async function scoreFormula(features, model, version, explain) {
  const read = ScoreBridge.readRange(features);
  const result = await ScoreBridge.scoreRange(ScoreBridge.modelArg(model),
    ScoreBridge.versionArg(version), read.values, explain);
  return { read: read, result: result };
}

/**
 * Predicts with a deployed model: one value per row of the range.
 * @customfunction PREDICT
 * @param {any[][]} features Input values, one row per prediction. A first row that names the model's columns is matched by name.
 * @param {string} [model] Model name (default: the server's default model).
 * @param {number} [version] Model version (default: the production version).
 * @returns {any[][]} One prediction per row.
 */
async function predict(features, model, version) {
  const scored = await scoreFormula(features, model, version);
  return ScoreBridge.toRows(scored.result, function (r, i) { return [r.predictions[i]]; },
    scored.read.problems, scored.read.values[0]);
}

/**
 * Probability of a class: by default the positive (last) class; "all" spills every class.
 * @customfunction PREDICT_PROBA
 * @param {any[][]} features Input values, one row per prediction.
 * @param {string} [model] Model name (default: the server's default model).
 * @param {string} [className] Class name, or "all" for a row of every class's probability.
 * @returns {any[][]} Probabilities, one row per input row.
 */
async function predictProba(features, model, className) {
  const scored = await scoreFormula(features, model, null);
  const result = scored.result;
  if (!result.classes || !result.probabilities) {
    throw ScoreBridge.fail("invalidValue", "This model gives no probabilities (not a classifier)");
  }
  const classes = result.classes.map(String);
  let pick;
  if (className === "all" || className === "*") {
    pick = function (r, i) { return r.probabilities[i]; };
    pick.width = classes.length;
  } else {
    const wanted = className === undefined || className === null || className === "" ?
      classes.length - 1 : classes.indexOf(String(className));
    if (wanted < 0) {
      throw ScoreBridge.fail("invalidValue", "Unknown class " + className + "; classes: " +
        classes.join(", "));
    }
    pick = function (r, i) { return [r.probabilities[i][wanted]]; };
  }
  return ScoreBridge.toRows(result, pick, scored.read.problems, scored.read.values[0]);
}

/**
 * Why each row's prediction: its strongest reasons as phrases, one per cell, spilling to the right.
 * @customfunction EXPLAIN
 * @param {any[][]} features Input values, one row per prediction.
 * @param {string} [model] Model name (default: the server's default model).
 * @param {number} [reasons] How many reasons per row (default 3).
 * @returns {any[][]} One row of reasons per input row.
 */
async function explain(features, model, reasons) {
  const k = reasons === undefined || reasons === null || reasons === "" ? 3 : Number(reasons);
  if (!Number.isInteger(k) || k < 1 || k > 100) {
    throw ScoreBridge.fail("invalidValue", "reasons: give a whole number from 1 to 100");
  }
  const scored = await scoreFormula(features, model, null, k);
  const pick = function (r, i) {
    const texts = (r.reasons && r.reasons[i]) || [];
    return texts.concat(new Array(Math.max(k - texts.length, 0)).fill("")).slice(0, k);
  };
  pick.width = k;
  return ScoreBridge.toRows(scored.result, pick, scored.read.problems, scored.read.values[0]);
}

function modelsTable(body) {
  const rows = [["model", "production version", "latest version", "description"]];
  body.models.forEach(function (m) {
    rows.push([m.name, m.production_version === null ? "" : m.production_version,
      m.latest_version === null ? "" : m.latest_version, m.description || ""]);
  });
  return rows;
}

/**
 * The deployed models: name, production version, latest version, description. Refreshes every minute, on connect and when a new version answers.
 * @customfunction MODELS
 * @streaming
 * @param {CustomFunctions.StreamingInvocation<any[][]>} invocation Set by Excel.
 */
function models(invocation) {
  ScoreBridge.stream(invocation, async function () {
    return modelsTable(await ScoreBridge.getInfo("/api/v1/models",
      ScoreBridge.state.limits.pollMs / 2));
  });
}

function modelInfoTable(m) {
  const prod = m.versions.find(function (v) { return v.version === m.production_version; });
  const rows = [
    ["model", m.name],
    ["production version", m.production_version === null ? "" : m.production_version],
    ["registered", prod ? prod.created_at : ""],
    ["policy", (m.policy && m.policy.policy) || "auto"],
    ["output", m.signature ? m.signature.output.kind : ""],
  ];
  if (prod) {
    Object.keys(prod.metrics).forEach(function (name) {
      rows.push(["metric: " + name, prod.metrics[name]]);
    });
  }
  return rows;
}

/**
 * A model's production version, when it was trained, its policy and its metrics. Refreshes every minute, on connect and when a new version answers.
 * @customfunction MODEL_INFO
 * @streaming
 * @param {string} model Model name.
 * @param {CustomFunctions.StreamingInvocation<any[][]>} invocation Set by Excel.
 */
function modelInfo(model, invocation) {
  ScoreBridge.stream(invocation, async function () {
    const name = ScoreBridge.modelArg(model);
    if (!name) throw ScoreBridge.fail("invalidValue", "model: give a model name");
    return modelInfoTable(await ScoreBridge.getInfo("/api/v1/models/" + encodeURIComponent(name),
      ScoreBridge.state.limits.pollMs / 2));
  });
}

/**
 * The model's input columns in order: the header row to type above your data.
 * @customfunction FEATURES
 * @param {string} model Model name.
 * @returns {any[][]} One row of column names.
 */
async function features(model) {
  const name = ScoreBridge.modelArg(model);
  if (!name) throw ScoreBridge.fail("invalidValue", "model: give a model name");
  const m = await ScoreBridge.getInfo("/api/v1/models/" + encodeURIComponent(name));
  if (!m.signature) throw ScoreBridge.fail("notAvailable", "The model has no production version");
  return [m.signature.inputs.map(function (c) { return c.name; })];
}

if (typeof CustomFunctions !== "undefined" && CustomFunctions.associate) {
  CustomFunctions.associate("PREDICT", predict);
  CustomFunctions.associate("PREDICT_PROBA", predictProba);
  CustomFunctions.associate("EXPLAIN", explain);
  CustomFunctions.associate("MODELS", models);
  CustomFunctions.associate("MODEL_INFO", modelInfo);
  CustomFunctions.associate("FEATURES", features);
}
