/**
 * ScoreBridge for Google Sheets: =PREDICT(A2:F2) and =PREDICT(A2:F100, "churn").
 *
 * Paste this file into Extensions → Apps Script of a spreadsheet, then use the ScoreBridge menu
 * (reload the sheet once) to enter the server URL and an API key. Calls go to the same batch
 * endpoint the Excel add-in uses: one formula is one request, however many rows its range has,
 * and an answer is kept in the document's cache, so a recalculation that changes nothing sends
 * nothing.
 */

var SCOREBRIDGE_URL = "SCOREBRIDGE_URL";
var SCOREBRIDGE_KEY = "SCOREBRIDGE_API_KEY";
var SCOREBRIDGE_CACHE_SECONDS = 60;    // an answer is reused for a minute: a rollback shows within one
var SCOREBRIDGE_CACHE_PIECE = 30000;   // characters per cached value: under 100 KB even in UTF-8
var SCOREBRIDGE_CACHE_PIECES = 100;    // a larger answer is not cached (a cache holds ~1,000 items)
var SCOREBRIDGE_DAY_MS = 86400000;
var SCOREBRIDGE_EPOCH_MS = Date.UTC(1899, 11, 30);   // serial 0, in Sheets and in Excel

/** Adds the ScoreBridge menu when the spreadsheet opens. */
function onOpen() {
  SpreadsheetApp.getUi().createMenu("ScoreBridge")
    .addItem("Set server and API key…", "scorebridgeSetup")
    .addToUi();
}

/**
 * Asks for the server URL and the key; they are kept in this document's properties. Cancel or
 * closing a dialog changes nothing; an empty answer keeps what is saved (a key only for the same
 * server: a new server needs its own key).
 */
function scorebridgeSetup() {
  var ui = SpreadsheetApp.getUi();
  var props = PropertiesService.getDocumentProperties();
  var oldUrl = props.getProperty(SCOREBRIDGE_URL);
  var oldKey = props.getProperty(SCOREBRIDGE_KEY);
  var url = scorebridgeAsk_(ui, "Server URL (https://…)" +
    (oldUrl ? "\nNow " + oldUrl + ": leave empty to keep it." : ""));
  if (url === null) return;
  url = url.trim().replace(/\/+$/, "") || oldUrl || "";
  if (!/^https:\/\/[^\s/]+/i.test(url)) {
    ui.alert("ScoreBridge", "The server URL must start with https:// (Google's servers call " +
      "it). Nothing was changed.", ui.ButtonSet.OK);
    return;
  }
  var sameServer = url === oldUrl;
  var key = scorebridgeAsk_(ui, "API key for " + url + " (score scope)" +
    (sameServer && oldKey ? "\nLeave empty to keep the current key." : ""));
  if (key === null) return;
  key = key.trim() || (sameServer && oldKey) || "";
  if (!key) {
    ui.alert("ScoreBridge", "No API key for " + url + ". Nothing was changed.", ui.ButtonSet.OK);
    return;
  }
  props.setProperties({ SCOREBRIDGE_URL: url, SCOREBRIDGE_API_KEY: key });
  ui.alert("ScoreBridge", "Saved: PREDICT now calls " + url + ".", ui.ButtonSet.OK);
}

/** The text entered, or null when the dialog was cancelled or closed. */
function scorebridgeAsk_(ui, text) {
  var response = ui.prompt("ScoreBridge", text, ui.ButtonSet.OK_CANCEL);
  return response.getSelectedButton() === ui.Button.OK ? response.getResponseText() : null;
}

/**
 * Predicts with a deployed model: one value per row of the range. A first row that names the
 * model's columns is matched by name; otherwise values are read in the model's column order.
 *
 * @param {A2:F2} range The input values.
 * @param {"churn"} model The model (optional: the server's default model).
 * @param {3} version A version of the model (optional: the one deployed).
 * @return One prediction per row.
 * @customfunction
 */
function PREDICT(range, model, version) {
  var settings = scorebridgeSettings_();
  var call = {
    model: model === undefined || model === null || model === "" ? null : String(model),
    version: scorebridgeVersion_(version),
    values: scorebridgeValues_(range)
  };
  var cache = CacheService.getDocumentCache() || CacheService.getScriptCache();
  var key = scorebridgeCacheKey_(settings, call);
  var answer = scorebridgeCacheGet_(cache, key);
  if (answer === null) {
    answer = scorebridgeAnswer_(scorebridgeScore_(settings, call));
    scorebridgeCachePut_(cache, key, answer);
  }
  if (answer.error !== null) throw new Error(answer.error);
  return answer.rows;
}

function scorebridgeSettings_() {
  var props = PropertiesService.getDocumentProperties();
  var url = props.getProperty(SCOREBRIDGE_URL);
  var key = props.getProperty(SCOREBRIDGE_KEY);
  if (!url || !key) {
    throw new Error("Set the ScoreBridge server and API key first (ScoreBridge menu)");
  }
  return { url: url, key: key };
}

/** A version number, or null for the deployed one; a bad one fails this formula only. */
function scorebridgeVersion_(version) {
  if (version === undefined || version === null || version === "") return null;
  if (typeof version !== "number" || version !== Math.floor(version) || version < 1) {
    throw new Error("version must be a whole number of at least 1, not " + version);
  }
  return version;
}

/** The range as rows of JSON values; dates as the serial numbers the Excel add-in sends. */
function scorebridgeValues_(range) {
  var rows = Array.isArray(range) ? (Array.isArray(range[0]) ? range : [range]) : [[range]];
  var zone = null;
  return rows.map(function (row) {
    return row.map(function (value) {
      if (Object.prototype.toString.call(value) !== "[object Date]") return value;
      zone = zone || SpreadsheetApp.getActiveSpreadsheet().getSpreadsheetTimeZone();
      return scorebridgeSerial_(value, zone);
    });
  });
}

/**
 * Days since 1899-12-30 with the time as the fraction, read on the spreadsheet's clock: Sheets
 * hands a date cell over as the instant of that wall-clock time in the spreadsheet's time zone.
 */
function scorebridgeSerial_(date, zone) {
  var p = Utilities.formatDate(date, zone, "yyyy-MM-dd HH:mm:ss.SSS").split(/[- :.]/).map(Number);
  var wall = new Date(0);
  wall.setUTCFullYear(p[0], p[1] - 1, p[2]);
  wall.setUTCHours(p[3], p[4], p[5], p[6]);
  return (wall.getTime() - SCOREBRIDGE_EPOCH_MS) / SCOREBRIDGE_DAY_MS;
}

/** One POST for the whole range; a clear error for anything but ScoreBridge's JSON answer. */
function scorebridgeScore_(settings, call) {
  var response;
  try {
    response = UrlFetchApp.fetch(settings.url + "/excel/v1/batch", {
      method: "post",
      contentType: "application/json",
      headers: { "X-API-Key": settings.key, "X-ScoreBridge-Client": "sheets" },
      payload: JSON.stringify({ probabilities: false, calls: [call] }),
      muteHttpExceptions: true
    });
  } catch (e) {
    throw new Error("Cannot reach ScoreBridge at " + settings.url + " (" + (e && e.message) + ")");
  }
  var status = response.getResponseCode();
  var type = scorebridgeHeader_(response.getHeaders(), "Content-Type");
  var body = scorebridgeJson_(response.getContentText(), type);
  if (status !== 200 || body === null || !Array.isArray(body.results)) {
    throw new Error(scorebridgeProblem_(status, type, body));
  }
  var result = body.results[0];
  if (!result || !Array.isArray(result.predictions)) {
    throw new Error((result && result.error) || "ScoreBridge's answer holds no result for this range");
  }
  return result;
}

/** A header's value whatever the case of its name; "" when absent. */
function scorebridgeHeader_(headers, name) {
  var wanted = name.toLowerCase();
  for (var key in headers) {
    if (key.toLowerCase() === wanted) {
      var value = headers[key];
      return String(Array.isArray(value) ? value[0] : value);
    }
  }
  return "";
}

/** The parsed body when it is JSON, else null (a proxy's HTML page, a truncated answer). */
function scorebridgeJson_(text, type) {
  if (!/[/+]json\b/i.test(type)) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function scorebridgeProblem_(status, type, body) {
  if (body && (body.detail || body.title)) return String(body.detail || body.title);
  var what = type ? type.split(";")[0].trim() : "no content type";
  if (status === 200) {
    return "ScoreBridge answered with " + what + " instead of its JSON: is the server URL right?";
  }
  var why = {
    429: "too many requests: recalculate in a minute",
    502: "the server, or a proxy in front of it, is down: try again later",
    503: "the server is busy or starting: try again later",
    504: "the server did not answer in time: try again later"
  }[status] || "see the server's log";
  return "ScoreBridge answered HTTP " + status + " (" + what + ", not JSON): " + why;
}

/**
 * The cells to show: one row per data row; a bad row's message as text in its row. A range of a
 * single row that cannot be scored fails as a whole (Sheets shows #ERROR! with the message).
 */
function scorebridgeAnswer_(result) {
  var problems = {};
  var general = null;
  (result.errors || []).forEach(function (e) {
    var text = e.column ? e.column + ": " + e.message : e.message;
    if (e.row === undefined || e.row === null) {
      general = general ? general + "; " + text : text;
    } else {
      problems[e.row] = problems[e.row] ? problems[e.row] + "; " + text : text;
    }
  });
  var blank = {};
  (result.blank || []).forEach(function (i) { blank[i] = true; });
  var first = null;
  var rows = result.predictions.map(function (p, i) {
    if (blank[i]) return [""];
    if (problems[i] !== undefined || p === null) {
      var message = problems[i] || general || "this row was not scored";
      if (first === null) first = message;
      return ["#VALUE! " + message];
    }
    return [p];
  });
  if (rows.length === 0) return { rows: [], error: "No data rows in the range" };
  return { rows: rows, error: rows.length === 1 ? first : null };
}

/** The key for this server, API key, model, version and rows, hashed: no key above 250 chars,
 *  and neither the API key nor the data stored in the clear. */
function scorebridgeCacheKey_(settings, call) {
  var text = JSON.stringify([settings.url, settings.key, call.model, call.version, call.values]);
  var digest = Utilities.computeDigest(Utilities.DigestAlgorithm.SHA_256, text,
    Utilities.Charset.UTF_8);
  return "sb1:" + Utilities.base64EncodeWebSafe(digest);
}

/** The cached answer, or null: a missing piece (the cache may drop any item) is a miss. */
function scorebridgeCacheGet_(cache, key) {
  try {
    var count = cache.get(key);
    if (count === null) return null;
    var names = [];
    for (var i = 0; i < Number(count); i++) names.push(key + "." + i);
    var pieces = cache.getAll(names);
    var text = "";
    for (var j = 0; j < names.length; j++) {
      if (typeof pieces[names[j]] !== "string") return null;
      text += pieces[names[j]];
    }
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The answer in pieces below Apps Script's 100 KB per value; caching is only a saving. */
function scorebridgeCachePut_(cache, key, answer) {
  var text = JSON.stringify(answer);
  var entries = {};
  var count = 0;
  for (var start = 0; start < text.length; count++) {
    var end = Math.min(start + SCOREBRIDGE_CACHE_PIECE, text.length);
    var code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xD800 && code <= 0xDBFF) end -= 1;  // keep pairs whole
    entries[key + "." + count] = text.slice(start, end);
    start = end;
  }
  if (count > SCOREBRIDGE_CACHE_PIECES) return;
  entries[key] = String(count);
  try {
    cache.putAll(entries, SCOREBRIDGE_CACHE_SECONDS);
  } catch {
    /* a full or unavailable cache only costs a request next time */
  }
}
