/*
 * ScoreBridge custom functions for Excel on Windows, Mac and the web:
 *   =ML.PREDICT(A2:F2)   =ML.PREDICT_PROBA(A2:F2)   =ML.MODELS()   =ML.MODEL_INFO("churn")
 *   =ML.FEATURES("churn")
 *
 * Runs in the add-in's shared runtime (the task pane page loads this same script), served by the
 * ScoreBridge server itself, so every request is same-origin.
 *
 * Calls are batched: every invocation is queued, and a short timer sends the whole queue as one
 * request (split to stay far below Excel on the web's ~5 MB limit). Results are cached per model
 * version and range, so a recalculation that changes nothing sends nothing. A bad row becomes
 * #VALUE! with a message naming the column and the problem; the other rows are unaffected.
 */
"use strict";

var ScoreBridge = (function () {
  const FLUSH_DELAY_MS = 25;
  const MAX_BATCH_ROWS = 5000;
  const MAX_BATCH_BYTES = 1000000;
  const TIMEOUT_MS = 30000;
  const VERSION_TTL_MS = 60000;
  const INFO_TTL_MS = 60000;
  const MAX_CACHED = 200000;
  const MAX_ERRORS = 50;
  const STORAGE_URL = "scorebridge.url";
  const STORAGE_KEY = "scorebridge.apiKey";

  const state = {
    queue: [],
    timer: null,
    results: new Map(), // "model|servedVersion|range" -> result of one call
    served: new Map(), // "model|requestedVersion" -> {version, at}
    info: new Map(), // GET path -> {body, at}
    errors: [],
    requests: 0,
    listeners: [],
    timeoutMs: TIMEOUT_MS,
  };

  async function storageGet(name) {
    if (typeof OfficeRuntime !== "undefined" && OfficeRuntime.storage) {
      try {
        const value = await OfficeRuntime.storage.getItem(name);
        if (value) return value;
      } catch {
        /* fall back to localStorage */
      }
    }
    return typeof localStorage !== "undefined" ? localStorage.getItem(name) : null;
  }

  async function storageSet(name, value) {
    if (typeof OfficeRuntime !== "undefined" && OfficeRuntime.storage) {
      try {
        await OfficeRuntime.storage.setItem(name, value);
      } catch {
        /* localStorage below */
      }
    }
    if (typeof localStorage !== "undefined") localStorage.setItem(name, value);
  }

  /** The server URL (this page's origin unless set) and the API key, kept in the add-in's
   *  storage: never in the workbook. */
  async function config() {
    const origin = typeof location !== "undefined" && location.origin ? location.origin : "";
    const base = ((await storageGet(STORAGE_URL)) || origin).replace(/\/+$/, "");
    return { base: base, key: (await storageGet(STORAGE_KEY)) || "" };
  }

  async function setConfig(base, key) {
    if (base !== undefined && base !== null) await storageSet(STORAGE_URL, base);
    if (key !== undefined && key !== null) await storageSet(STORAGE_KEY, key);
    clearCache();
  }

  function clearCache() {
    state.results.clear();
    state.served.clear();
    state.info.clear();
  }

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
    if (typeof CustomFunctions === "undefined") {  // the task pane opened outside Excel
      const error = new Error(text);
      error.code = code === "notAvailable" ? "#N/A" : "#VALUE!";
      return error;
    }
    return new CustomFunctions.Error(CustomFunctions.ErrorCode[code], text);
  }

  async function request(path, options) {
    const cfg = await config();
    if (!cfg.key) {
      throw fail("invalidValue", "No API key: open the ScoreBridge pane (Home tab) and enter one");
    }
    const opts = options || {};
    const headers = Object.assign({}, opts.headers || {},
      { "X-API-Key": cfg.key, "X-ScoreBridge-Client": "excel" });
    const controller = new AbortController();
    const timer = setTimeout(function () { controller.abort(); }, state.timeoutMs);
    state.requests += 1;
    let response;
    try {
      response = await fetch(cfg.base + path, {
        method: opts.method || "GET", headers: headers, body: opts.body, signal: controller.signal,
      });
    } catch (e) {
      const why = e && e.name === "AbortError"
        ? "ScoreBridge did not answer within " + state.timeoutMs / 1000 + " s"
        : "Cannot reach ScoreBridge at " + cfg.base;
      logError(path, why);
      throw fail("notAvailable", why);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      let detail = "HTTP " + response.status;
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || detail;
      } catch {
        /* not JSON */
      }
      logError(path, detail);
      throw fail(response.status === 404 ? "notAvailable" : "invalidValue", detail);
    }
    return response.json();
  }

  async function getInfo(path) {
    const hit = state.info.get(path);
    if (hit && Date.now() - hit.at < INFO_TTL_MS) return hit.body;
    const body = await request(path);
    state.info.set(path, { body: body, at: Date.now() });
    return body;
  }

  /** Excel cell values as JSON values; error values travel as their text (#N/A), which the
   *  server reports per row. */
  function cell(value) {
    if (value === undefined || value === null) return null;
    if (typeof value === "object") {
      if (typeof value.code === "string") return value.code;
      if (typeof value.errorType === "string") return "#" + value.errorType;
      return String(value);
    }
    return value;
  }

  function normalise(range) {
    if (!Array.isArray(range)) return [[cell(range)]];
    return range.map(function (row) {
      return Array.isArray(row) ? row.map(cell) : [cell(row)];
    });
  }

  function schedule() {
    if (state.timer === null) state.timer = setTimeout(flush, FLUSH_DELAY_MS);
  }

  /** One call's result, from the cache when its model version is known and fresh. */
  function score(model, version, values, header) {
    const requested = model + "|" + (version || "");
    const rangeKey = JSON.stringify(header ? [header].concat(values) : values);
    const served = state.served.get(requested);
    if (served && Date.now() - served.at < VERSION_TTL_MS) {
      const hit = state.results.get(model + "|" + served.version + "|" + rangeKey);
      if (hit) return Promise.resolve(hit);
    }
    return new Promise(function (resolve, reject) {
      state.queue.push({
        model: model, version: version || null, values: values, header: header || null,
        key: rangeKey, requested: requested, bytes: rangeKey.length + 64,
        resolve: resolve, reject: reject,
      });
      schedule();
    });
  }

  /** A range larger than one request holds is sent in parts; the first row goes with every part
   *  as a header hint, so a header row is recognised in each. */
  async function scoreRange(model, version, values) {
    if (values.length <= MAX_BATCH_ROWS) return score(model, version, values, null);
    const parts = [score(model, version, values.slice(0, MAX_BATCH_ROWS), null)];
    for (let start = MAX_BATCH_ROWS; start < values.length; start += MAX_BATCH_ROWS) {
      parts.push(score(model, version, values.slice(start, start + MAX_BATCH_ROWS), values[0]));
    }
    const results = await Promise.all(parts);
    const first = results[0];
    const merged = Object.assign({}, first,
      { predictions: [], probabilities: [], errors: [], blank: [] });
    let offset = 0;
    results.forEach(function (part, i) {
      merged.predictions = merged.predictions.concat(part.predictions);
      merged.probabilities = merged.probabilities.concat(part.probabilities || []);
      (part.errors || []).forEach(function (e) {
        merged.errors.push(Object.assign({}, e, { row: e.row + offset }));
      });
      (part.blank || []).forEach(function (i) { merged.blank.push(i + offset); });
      offset += part.predictions.length;
      if (i > 0 && part.version !== first.version) {
        merged.versionChanged = true;
      }
    });
    if (merged.versionChanged) {
      throw fail("notAvailable", "The model version changed during the calculation: recalculate");
    }
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
      if (current.length && (rows + n > MAX_BATCH_ROWS || bytes + item.bytes > MAX_BATCH_BYTES)) {
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

  async function send(chunk) {
    const body = JSON.stringify({
      probabilities: true,
      calls: chunk.map(function (c) {
        const call = { model: c.model || null, version: c.version, values: c.values };
        if (c.header) call.header = c.header;
        return call;
      }),
    });
    let answer;
    try {
      answer = await request("/excel/v1/batch", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: body,
      });
    } catch (e) {
      chunk.forEach(function (c) { c.reject(e); });
      return;
    }
    answer.results.forEach(function (result, i) {
      const call = chunk[i];
      if (result.error) {
        logError(call.model || "(default model)", result.error);
        call.reject(fail(result.status === 404 ? "notAvailable" : "invalidValue", result.error));
        return;
      }
      state.served.set(call.requested, { version: result.version, at: Date.now() });
      if (state.results.size >= MAX_CACHED) state.results.clear();
      state.results.set(call.model + "|" + result.version + "|" + call.key, result);
      (result.errors || []).forEach(function (e) {
        logError((result.model || call.model) + " row " + (e.row + 1), describe(e));
      });
      call.resolve(result);
    });
  }

  function describe(error) {
    return error.column ? error.column + ": " + error.message : error.message;
  }

  /** Rows of a result as a 2-D array, with a #VALUE! error (and its message) in bad rows. */
  function toRows(result, pick) {
    const problems = {};
    (result.errors || []).forEach(function (e) {
      problems[e.row] = problems[e.row] ? problems[e.row] + "; " + describe(e) : describe(e);
    });
    const blank = {};
    (result.blank || []).forEach(function (i) { blank[i] = true; });
    const rows = result.predictions.map(function (prediction, i) {
      if (blank[i]) return pick.width ? new Array(pick.width).fill("") : [""];
      if (problems[i] !== undefined || prediction === null) {
        const error = fail("invalidValue", problems[i] || "This row could not be scored");
        return pick.width ? new Array(pick.width).fill(error) : [error];
      }
      return pick(result, i);
    });
    if (rows.length === 0) throw fail("invalidValue", "No data rows in the range");
    // a single cell with an error shows the error itself (values are never objects)
    if (rows.length === 1 && rows[0][0] !== null && typeof rows[0][0] === "object") throw rows[0][0];
    return rows;
  }

  return {
    state: state, config: config, setConfig: setConfig, clearCache: clearCache, flush: flush,
    request: request, getInfo: getInfo, scoreRange: scoreRange, normalise: normalise,
    toRows: toRows, fail: fail, logError: logError,
    onChange: function (fn) { state.listeners.push(fn); },
    MAX_BATCH_ROWS: MAX_BATCH_ROWS, MAX_BATCH_BYTES: MAX_BATCH_BYTES,
  };
})();

/**
 * Predicts with a deployed model: one value per row of the range.
 * @customfunction PREDICT
 * @param {any[][]} features Input values, one row per prediction. A first row that names the model's columns is matched by name.
 * @param {string} [model] Model name (default: the server's default model).
 * @param {number} [version] Model version (default: the production version).
 * @returns {any[][]} One prediction per row.
 */
async function predict(features, model, version) {
  const result = await ScoreBridge.scoreRange(model || "", version || null,
    ScoreBridge.normalise(features));
  return ScoreBridge.toRows(result, function (r, i) { return [r.predictions[i]]; });
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
  const result = await ScoreBridge.scoreRange(model || "", null, ScoreBridge.normalise(features));
  if (!result.classes || !result.probabilities) {
    throw ScoreBridge.fail("invalidValue", "This model gives no probabilities (not a classifier)");
  }
  const classes = result.classes.map(String);
  if (className === "all" || className === "*") {
    const pick = function (r, i) { return r.probabilities[i]; };
    pick.width = classes.length;
    return ScoreBridge.toRows(result, pick);
  }
  const wanted = className === undefined || className === null || className === "" ?
    classes.length - 1 : classes.indexOf(String(className));
  if (wanted < 0) {
    throw ScoreBridge.fail("invalidValue", "Unknown class " + className + "; classes: " +
      classes.join(", "));
  }
  return ScoreBridge.toRows(result, function (r, i) { return [r.probabilities[i][wanted]]; });
}

/**
 * The deployed models: name, production version, latest version, description.
 * @customfunction MODELS
 * @returns {any[][]} A table with a header row.
 */
async function models() {
  const body = await ScoreBridge.getInfo("/api/v1/models");
  const rows = [["model", "production version", "latest version", "description"]];
  body.models.forEach(function (m) {
    rows.push([m.name, m.production_version === null ? "" : m.production_version,
      m.latest_version === null ? "" : m.latest_version, m.description || ""]);
  });
  return rows;
}

/**
 * A model's production version, when it was trained, its policy and its metrics.
 * @customfunction MODEL_INFO
 * @param {string} model Model name.
 * @returns {any[][]} Two columns: what, value.
 */
async function modelInfo(model) {
  const m = await ScoreBridge.getInfo("/api/v1/models/" + encodeURIComponent(model));
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
 * The model's input columns in order: the header row to type above your data.
 * @customfunction FEATURES
 * @param {string} model Model name.
 * @returns {any[][]} One row of column names.
 */
async function features(model) {
  const m = await ScoreBridge.getInfo("/api/v1/models/" + encodeURIComponent(model));
  if (!m.signature) throw ScoreBridge.fail("notAvailable", "The model has no production version");
  return [m.signature.inputs.map(function (c) { return c.name; })];
}

if (typeof CustomFunctions !== "undefined" && CustomFunctions.associate) {
  CustomFunctions.associate("PREDICT", predict);
  CustomFunctions.associate("PREDICT_PROBA", predictProba);
  CustomFunctions.associate("MODELS", models);
  CustomFunctions.associate("MODEL_INFO", modelInfo);
  CustomFunctions.associate("FEATURES", features);
}
