/* The task pane: server URL and API key (add-in storage only), connection status, the model list,
 * recording outcomes from a selected range, and the last errors in full. Shares its JavaScript
 * context with the custom functions. */
"use strict";

/* Outcomes from a range of cells, as the server takes them: plain functions, apart from the page,
 * so what is sent depends only on the cells and the columns chosen. */
var ScoreBridgeOutcomes = (function () {
  const DAY_MS = 86400000;
  const EXCEL_EPOCH = Date.UTC(1899, 11, 30); // serial 0 of the 1900 date system, from March 1900
  const LAST_SERIAL = 2958466; // 10000-01-01: Excel has no later date
  const ID = "prediction_id";

  function empty(value) {
    return value === null || value === undefined || (typeof value === "string" &&
      value.trim() === "");
  }

  /** An Excel date serial (1900 date system, the default on Windows and Mac) as an ISO 8601 UTC
   *  time; null for a number that is no date. Excel counts a 29 February 1900 that never was, so
   *  serials before 60 start a day later. */
  function excelTime(serial) {
    if (typeof serial !== "number" || !isFinite(serial) || serial < 0 || serial >= LAST_SERIAL) {
      return null;
    }
    const days = serial < 60 ? serial + 1 : serial;
    return new Date(EXCEL_EPOCH + Math.round(days * DAY_MS)).toISOString().replace(".000Z", "Z");
  }

  /** A time cell as sent: a date serial as ISO 8601 UTC, text as typed (the server reads it and
   *  answers the row if it cannot); empty: null (the server uses the time it receives it). */
  function timeOf(value) {
    if (empty(value)) return null;
    if (typeof value === "number") return excelTime(value) || value;
    return typeof value === "string" ? value.trim() : value;
  }

  function normal(name) {
    return String(name === null || name === undefined ? "" : name).trim().toLowerCase();
  }

  /** The columns to preselect from a header row: the key column (the model's business key,
   *  else prediction_id, else key, else the first), actual and time by name. */
  function guessColumns(header, businessKey) {
    const names = header.map(normal);
    const find = function (name) { return name ? names.indexOf(normal(name)) : -1; };
    let key = [businessKey, ID, "key"].map(find).find(function (i) { return i >= 0; });
    if (key === undefined) key = 0;
    let actual = find("actual");
    if (actual < 0) actual = names.length > 1 ? (key === 0 ? 1 : 0) : -1;
    return { key: key, actual: actual, time: find("time") };
  }

  /** The outcomes of a range's rows (header first) for the chosen columns (indexes; time -1 for
   *  none): one item per row with a value in them, naming its row; empty rows are skipped. A key
   *  column headed prediction_id gives prediction ids, any other a business key. */
  function outcomesOf(values, columns) {
    const byId = normal(values[0][columns.key]) === ID;
    const items = [];
    let skipped = 0;
    for (let i = 1; i < values.length; i += 1) {
      const row = values[i];
      const key = row[columns.key];
      const actual = columns.actual >= 0 ? row[columns.actual] : null;
      const time = columns.time >= 0 ? row[columns.time] : null;
      if (empty(key) && empty(actual) && empty(time)) {
        skipped += 1;
        continue;
      }
      const outcome = { actual: empty(actual) ? null : actual, time: timeOf(time) };
      if (byId) outcome.prediction_id = empty(key) ? null : String(key).trim();
      else outcome.key = empty(key) ? null : typeof key === "string" ? key.trim() : key;
      items.push({ row: i, outcome: outcome });
    }
    return { items: items, skipped: skipped };
  }

  function chunks(items, size) {
    const out = [];
    for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
    return out;
  }

  /** What a cell shows of a row's answer. */
  function answerText(answer) {
    if (!answer) return "";
    return answer.status + (answer.late ? " (late)" : "") +
      (answer.message ? ": " + answer.message : "");
  }

  /** Text written into a cell, never read as a formula: text that Excel would take for one
   *  (= + - @, or a tab or return first) gets the apostrophe that keeps it text. */
  function safeText(value) {
    const text = String(value === null || value === undefined ? "" : value);
    return /^[=+\-@\t\r]/.test(text) ? "'" + text : text;
  }

  return { excelTime: excelTime, timeOf: timeOf, guessColumns: guessColumns,
    outcomesOf: outcomesOf, chunks: chunks, answerText: answerText, safeText: safeText };
})();

(function () {
  const $ = function (id) { return document.getElementById(id); };

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value === null || value === undefined ? "" : String(value);
    if (cls) el.className = cls;
    return el;
  }

  function setStatus(kind, message) {
    const el = $("status");
    el.className = "status " + kind;
    el.textContent = message;
  }

  function renderErrors(state) {
    const list = $("errors");
    list.replaceChildren();
    if (!state.errors.length) list.appendChild(text("li", "None.", "muted"));
    state.errors.forEach(function (e) {
      const item = document.createElement("li");
      item.appendChild(text("span", e.time.replace("T", " ").slice(0, 19) + " · " + e.context,
        "when"));
      item.appendChild(text("span", e.message));
      list.appendChild(item);
    });
    $("requests").textContent = String(state.requests);
  }

  async function refresh() {
    setStatus("unknown", "connecting…");
    let body;
    try {
      body = await ScoreBridge.request("/api/v1/models");
    } catch (e) {
      setStatus("bad", "not connected");
      ScoreBridge.logError("connection", e.message || String(e));
      return;
    }
    setStatus("ok", "connected");
    const rows = $("models").tBodies[0];
    rows.replaceChildren();
    if (!body.models.length) {
      const tr = document.createElement("tr");
      const td = text("td", "No models deployed yet.", "muted");
      td.colSpan = 3;
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    fillModels(body.models);
    for (const m of body.models) {
      const tr = document.createElement("tr");
      tr.appendChild(text("td", m.name));
      tr.appendChild(text("td", m.production_version === null ? "–" :
        "v" + m.production_version + (m.latest_version !== m.production_version ?
          " (latest v" + m.latest_version + ")" : "")));
      const inputs = text("td", "", "inputs");
      tr.appendChild(inputs);
      rows.appendChild(tr);
      ScoreBridge.getInfo("/api/v1/models/" + encodeURIComponent(m.name)).then(function (d) {
        inputs.textContent = d.signature ? d.signature.inputs.map(function (c) {
          return c.name;
        }).join(", ") : "";
        noteTracking(m.name, d.outcomes);
      }).catch(function () { /* shown in the errors list */ });
    }
  }

  // -- Record outcomes: a range of the sheet, sent on a click only (never from a formula) ------

  const O = ScoreBridgeOutcomes;
  const ANSWER_HEADER = "outcome status"; // heads the column of answers written beside a range
  const FINE = ["recorded", "replaced", "unchanged"]; // the answers that need nothing done
  const ORDER = ["recorded", "replaced", "unchanged", "unknown", "invalid"];
  const MAX_LISTED = 100;
  const MAX_CHUNK = 100000; // the server's limit per request
  const outcomes = {
    range: null, // {sheet, address, rowIndex, values} as read from the selection
    tracking: new Map(), // model -> its outcome settings ({enabled, key}) from GET model info
    chosen: false, // the person chose a model: no longer preselected
  };

  function option(value, label) {
    const el = text("option", label);
    el.value = String(value);
    return el;
  }

  function inExcel() {
    return typeof Excel !== "undefined" && Excel !== null && typeof Excel.run === "function";
  }

  /** "Sheet1!A1:C9" (or "'My sheet'!A1:C9") without its sheet: the sheet is named apart. */
  function localAddress(address) {
    return String(address).split("!").pop();
  }

  function say(kind, message) {
    const el = $("outcome-message");
    el.className = "message" + (kind ? " " + kind : "");
    el.textContent = message;
  }

  function why(e) {
    return (e && e.message) || String(e);
  }

  function trackingLabel(name) {
    const t = outcomes.tracking.get(name);
    if (!t) return name;
    return name + (t.enabled ? " · tracks outcomes" + (t.key ? " (key " + t.key + ")" : "") :
      " · no outcome tracking");
  }

  function fillModels(models) {
    const select = $("outcome-model");
    const before = select.value;
    select.replaceChildren();
    if (!models.length) select.appendChild(option("", "No models deployed yet"));
    models.forEach(function (m) { select.appendChild(option(m.name, trackingLabel(m.name))); });
    if (models.some(function (m) { return m.name === before; })) select.value = before;
    describeTracking();
  }

  /** A model's outcome settings, from its GET answer: shown in the list, and the first model
   *  that tracks outcomes is preselected until the person chooses one. */
  function noteTracking(name, settings) {
    if (!settings) return;
    outcomes.tracking.set(name, settings);
    const select = $("outcome-model");
    Array.from(select.options).forEach(function (o) {
      if (o.value === name) o.textContent = trackingLabel(name);
    });
    const current = outcomes.tracking.get(select.value);
    if (!outcomes.chosen && settings.enabled && !(current && current.enabled)) {
      select.value = name;
      modelChanged();
      return;
    }
    if (select.value === name) modelChanged();
  }

  function describeTracking() {
    const name = $("outcome-model").value;
    const t = outcomes.tracking.get(name);
    $("outcome-tracking").textContent = !t ? "" : t.enabled ?
      "Takes outcomes by prediction_id" + (t.key ? " or by its business key " + t.key : "") + "." :
      "This model does not track outcomes: switch tracking on first (scorebridge track " + name +
      ", with a deploy key).";
  }

  function modelChanged() {
    describeTracking();
    if (outcomes.range) fillColumns(outcomes.range.values[0], true);
  }

  /** The column choices for a header row; preselected by name (only the key column again, when
   *  the model changes and `keyOnly`). */
  function fillColumns(header, keyOnly) {
    const t = outcomes.tracking.get($("outcome-model").value);
    const guess = O.guessColumns(header, t && t.key);
    if (keyOnly) {
      $("outcome-key").value = String(guess.key);
      return;
    }
    const labels = header.map(function (h, i) {
      return h === null || h === undefined || String(h).trim() === "" ? "(column " + (i + 1) + ")" :
        String(h);
    });
    [["outcome-key", guess.key], ["outcome-actual", guess.actual],
      ["outcome-time", guess.time]].forEach(function (pair) {
      const select = $(pair[0]);
      select.replaceChildren();
      if (pair[0] === "outcome-time") select.appendChild(option(-1, "(none: when it is sent)"));
      labels.forEach(function (label, i) { select.appendChild(option(i, label)); });
      select.value = String(pair[1]);
    });
  }

  /** The selection, trimmed to the cells that hold values (a whole-column selection is only its
   *  used part), with its sheet, address and first row. */
  async function readSelection() {
    return Excel.run(async function (context) {
      const selected = context.workbook.getSelectedRange();
      selected.worksheet.load("name");
      const used = selected.getUsedRangeOrNullObject(true);
      used.load(["address", "values", "rowIndex"]);
      await context.sync();
      if (used.isNullObject) return null;
      return { sheet: selected.worksheet.name, address: used.address, rowIndex: used.rowIndex,
        values: used.values };
    });
  }

  /** The values of a range read before, as they are now (edited since, wherever the selection
   *  has moved). */
  async function readAgain(range) {
    return Excel.run(async function (context) {
      const cells = context.workbook.worksheets.getItem(range.sheet)
        .getRange(localAddress(range.address));
      cells.load("values");
      await context.sync();
      return cells.values;
    });
  }

  async function useSelection() {
    if (!inExcel()) {
      say("bad", "The selection is read through Excel: open this pane in Excel (Home tab, " +
        "ScoreBridge).");
      return;
    }
    let range;
    try {
      range = await readSelection();
    } catch (e) {
      say("bad", "Excel did not give the selection: " + why(e));
      return;
    }
    if (!range || range.values.length < 2) {
      say("bad", "Select a header row and the rows under it (the selection " +
        (range ? "has only one row" : "is empty") + ").");
      return;
    }
    outcomes.range = range;
    fillColumns(range.values[0], false);
    $("outcome-columns").hidden = false;
    $("outcome-range").textContent = range.address + ": " + (range.values.length - 1) +
      " rows under the header.";
    say("", "");
  }

  function chunkRows() {
    const n = Number($("outcomes").dataset.chunkRows);
    return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_CHUNK) : 5000;
  }

  function progress(done, total) {
    const bar = $("outcome-progress");
    bar.hidden = false;
    bar.max = Math.max(total, 1);
    bar.value = done;
    say("", "Sending: " + done + " of " + total + " rows…");
  }

  /** A failed request as a person reads it: what was refused and what to do. */
  function refusal(e, name) {
    const problem = (e && e.problem) || {};
    const detail = problem.detail || problem.title || why(e);
    if (e.status === 401) {
      return "The server refused the API key (HTTP 401): " + detail + ". Enter a valid key " +
        "under Connection, then Save and connect.";
    }
    if (e.status === 403) {
      return "This API key may not record outcomes (HTTP 403): " + detail + ". Outcomes need a " +
        "key with the score scope.";
    }
    if (e.status === 404) return "No model " + name + " on this server (HTTP 404): " + detail;
    if (e.status) return "ScoreBridge refused the outcomes (HTTP " + e.status + "): " + detail;
    return why(e); // no answer: "Cannot reach ScoreBridge at ...", or a timeout
  }

  /** The rows in requests of chunkRows, one after another (a later row of the same prediction
   *  wins, as in one request), with progress; stops at the first refused request. */
  async function sendAll(name, items) {
    const path = "/api/v1/models/" + encodeURIComponent(name) + "/outcomes";
    const done = { answers: new Array(items.length), counts: {}, late: 0, sent: 0, requests: 0,
      error: null };
    progress(0, items.length);
    for (const part of O.chunks(items, chunkRows())) {
      let body;
      try {
        body = await ScoreBridge.request(path, {
          method: "POST", headers: { "Content-Type": "application/json" }, quiet: true,
          body: JSON.stringify({ outcomes: part.map(function (item) { return item.outcome; }) }),
        });
      } catch (e) {
        done.error = e;
        return done;
      }
      done.requests += 1;
      (body.answers || []).forEach(function (a) {
        if (Number.isInteger(a.row) && a.row >= 0 && a.row < part.length) {
          done.answers[done.sent + a.row] = a;
        }
      });
      Object.keys(body.counts || {}).forEach(function (status) {
        done.counts[status] = (done.counts[status] || 0) + body.counts[status];
      });
      done.late += body.late || 0;
      done.sent += part.length;
      progress(done.sent, items.length);
    }
    return done;
  }

  function countRow(status, label, n) {
    const tr = document.createElement("tr");
    tr.dataset.status = status;
    tr.appendChild(text("td", label));
    tr.appendChild(text("td", n));
    return tr;
  }

  /** Counts per answer and the rows that need a look (unknown, invalid, not sent), by sheet row. */
  function showAnswers(done, read, range) {
    const body = $("outcome-counts").tBodies[0];
    body.replaceChildren();
    statusesOf(done.counts).forEach(function (s) {
      body.appendChild(countRow(s, s, done.counts[s]));
    });
    if (done.late) body.appendChild(countRow("late", "late (counted as well)", done.late));
    if (read.skipped) body.appendChild(countRow("skipped", "empty rows skipped", read.skipped));
    if (done.sent < read.items.length) {
      body.appendChild(countRow("not-sent", "not sent", read.items.length - done.sent));
    }
    $("outcome-counts").hidden = !body.rows.length;
    const list = $("outcome-problems");
    list.replaceChildren();
    const looks = [];
    read.items.forEach(function (item, i) {
      const a = done.answers[i];
      if (i < done.sent && a && FINE.indexOf(a.status) >= 0) return;
      looks.push({ item: item, text: i >= done.sent ? "not sent" : O.answerText(a) ||
        "no answer for this row" });
    });
    looks.slice(0, MAX_LISTED).forEach(function (p) {
      const li = document.createElement("li");
      li.dataset.row = String(p.item.row);
      const o = p.item.outcome;
      const key = o.prediction_id !== undefined ? o.prediction_id : o.key;
      li.appendChild(text("span", "row " + (range.rowIndex + p.item.row + 1) +
        (key === null ? "" : " · " + key), "when"));
      li.appendChild(text("span", p.text));
      list.appendChild(li);
    });
    if (looks.length > MAX_LISTED) {
      list.appendChild(text("li", "… and " + (looks.length - MAX_LISTED) + " more (tick \"Write " +
        "each row's answer\" to see every row's)", "muted"));
    }
  }

  /** The statuses answered, in ORDER, then any other the server may add. */
  function statusesOf(counts) {
    return ORDER.concat(Object.keys(counts).filter(function (s) { return ORDER.indexOf(s) < 0; }))
      .filter(function (s) { return counts[s]; });
  }

  function summary(done) {
    return statusesOf(done.counts).map(function (s) { return done.counts[s] + " " + s; })
      .join(", ") || "no answers";
  }

  /** Each row's answer in the column right of the range, as plain text (never a formula), under
   *  ANSWER_HEADER; only into an empty column or one written so before. Its address. */
  async function writeAnswers(range, rows, read, done) {
    const column = new Array(rows).fill("");
    column[0] = ANSWER_HEADER;
    read.items.forEach(function (item, i) {
      column[item.row] = i >= done.sent ? "not sent" : O.answerText(done.answers[i]);
    });
    return Excel.run(async function (context) {
      const target = context.workbook.worksheets.getItem(range.sheet)
        .getRange(localAddress(range.address)).getColumnsAfter(1);
      target.load(["address", "values"]);
      await context.sync();
      const ours = target.values.length && target.values[0][0] === ANSWER_HEADER;
      const taken = target.values.some(function (row) { return row[0] !== "" && row[0] !== null; });
      if (taken && !ours) {
        throw new Error(target.address + " is not empty: nothing was written there (clear it, or " +
          "leave an empty column right of the range)");
      }
      target.values = column.map(function (v) { return [O.safeText(v)]; });
      await context.sync();
      return target.address;
    });
  }

  async function sendOutcomes() {
    const name = $("outcome-model").value;
    const range = outcomes.range;
    if (!name) return say("bad", "Choose a model first.");
    if (!range) return say("bad", "Select the range, then click Use the selection.");
    if (!inExcel()) return say("bad", "Open this pane in Excel to send a range.");
    const columns = { key: Number($("outcome-key").value), actual: Number($("outcome-actual").value),
      time: Number($("outcome-time").value) };
    if (columns.key === columns.actual || columns.key === columns.time ||
      columns.actual === columns.time) {
      return say("bad", "The key, the actual and the time must be different columns.");
    }
    let values;
    try {
      values = await readAgain(range);
    } catch (e) {
      return say("bad", "Excel did not give " + range.address + " again: " + why(e) +
        ". Select the range and click Use the selection.");
    }
    if (JSON.stringify(values[0]) !== JSON.stringify(range.values[0])) {
      return say("bad", "The header row of " + range.address + " has changed: click Use the " +
        "selection again.");
    }
    const read = O.outcomesOf(values, columns);
    if (!read.items.length) return say("bad", "No rows with values under the header.");
    const done = await sendAll(name, read.items);
    $("outcome-progress").hidden = true;
    showAnswers(done, read, range);
    let message = done.error ?
      (done.sent ? "Stopped after " + done.sent + " of " + read.items.length + " rows (" +
        summary(done) + "): " : "Nothing was recorded: ") + refusal(done.error, name) :
      "Sent " + done.sent + " rows in " + done.requests + (done.requests === 1 ? " request" :
        " requests") + ": " + summary(done) + ".";
    if (done.error && done.sent) message += " Sending the same rows again is safe: rows " +
      "recorded before come back unchanged.";
    let kind = done.error ? "bad" : "ok";
    if ($("outcome-write").checked && done.sent) {
      try {
        message += " Answers written to " + await writeAnswers(range, values.length, read, done) +
          ".";
      } catch (e) {
        message += " The answers were not written: " + why(e) + ".";
        kind = "bad";
      }
    }
    say(kind, message);
  }

  async function whileBusy(action) {
    const buttons = [$("outcome-read"), $("outcome-send")];
    if (buttons[1].disabled) return;
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      await action();
    } catch (e) {
      say("bad", why(e));
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  const MASK = "••••••••";

  // -- sign-in: the Office dialog opens the server's sign-in (any identity provider); its last
  // page hands back a one-time code, redeemed here with the verifier of this pane's challenge

  function base64url(bytes) {
    let text = "";
    bytes.forEach(function (b) { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function pkcePair() {
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    return { verifier: verifier, challenge: base64url(new Uint8Array(digest)) };
  }

  function dialogOpen(url) {
    return new Promise(function (resolve, reject) {
      Office.context.ui.displayDialogAsync(url, { height: 70, width: 40, promptBeforeOpen: false },
        function (result) {
          if (result.status === Office.AsyncResultStatus.Succeeded) resolve(result.value);
          else reject(new Error("the sign-in window did not open (" + result.error.message + ")"));
        });
    });
  }

  /** The code the dialog sends, or a rejection when the person closes it first. */
  function dialogCode(dialog) {
    return new Promise(function (resolve, reject) {
      dialog.addEventHandler(Office.EventType.DialogMessageReceived, function (arg) {
        let message;
        try {
          message = JSON.parse(arg.message);
        } catch {
          message = null;
        }
        if (message && message.kind === "scorebridge-signin" && message.code) {
          dialog.close();
          resolve(message.code);
        }
      });
      dialog.addEventHandler(Office.EventType.DialogEventReceived, function (arg) {
        reject(new Error(arg.error === 12006 ? "the sign-in window was closed" :
          "the sign-in window stopped (" + arg.error + ")"));
      });
    });
  }

  async function signIn() {
    const cfg = await ScoreBridge.config();
    if (typeof Office === "undefined" || !Office.context || !Office.context.ui) {
      $("signin-who").textContent = "Sign-in opens in an Office window: open this pane in Excel.";
      return;
    }
    const pair = await pkcePair();
    $("signin-who").textContent = "Signing in…";
    try {
      const dialog = await dialogOpen(cfg.base + "/excel/signin?challenge=" + pair.challenge);
      const code = await dialogCode(dialog);
      await ScoreBridge.redeemSignIn(code, pair.verifier);
    } catch (e) {
      ScoreBridge.logError("sign-in", why(e));
    }
    await showSignIn();
    await Promise.all([refresh(), recalculate()]);
  }

  async function signOut() {
    await ScoreBridge.signOut();
    await showSignIn();
    await Promise.all([refresh(), recalculate()]);
  }

  /** Runs a button's action with the button disabled until it ends. */
  async function once(id, action) {
    $(id).disabled = true;
    try {
      await action();
    } catch (e) {
      ScoreBridge.logError("sign-in", why(e));
    } finally {
      $(id).disabled = false;
    }
  }

  /** Who is signed in for the server in use, where the server offers sign-in. */
  async function showSignIn() {
    if (document.documentElement.dataset.signIn !== "on") return null;
    const cfg = await ScoreBridge.config().catch(function () { return {}; });
    const s = await ScoreBridge.signedIn(cfg.origin).catch(function () { return null; });
    $("signin").hidden = false;
    $("signin-who").textContent = s ? "Signed in as " + ((s.who && (s.who.name || s.who.actor)) ||
      "you") + "." : "Not signed in.";
    $("sign-in").hidden = Boolean(s);
    $("sign-out").hidden = !s;
    return s;
  }

  /** The key field shows a mask only when a key is saved for the server in the server field:
   *  a key is kept per server and never sent to another one. */
  async function showKeyFor(base) {
    const saved = await ScoreBridge.hasKey(base).catch(function () { return false; });
    const field = $("key");
    if (saved && (field.value === "" || field.value === MASK)) field.value = MASK;
    if (!saved && field.value === MASK) field.value = "";
    field.placeholder = saved ? "sb_…" : "sb_… (a key for this server)";
  }

  /** Cells answered before (with another key or server, or from the cache) are asked again. */
  async function recalculate() {
    await ScoreBridge.recalculate();
    renderErrors(ScoreBridge.state);
  }

  async function save(event) {
    event.preventDefault();
    const key = $("key").value.trim();
    let saved = true;
    try {
      await ScoreBridge.setConfig($("url").value.trim(), key === MASK || key === "" ? null : key);
    } catch (e) {
      saved = false;
      ScoreBridge.logError("settings", e.message || String(e));
    }
    $("key").value = ""; // never left in the page: masked below if saved for this server
    await showKeyFor($("url").value.trim());
    await Promise.all([refresh(), recalculate()]);
    if (!saved && $("status").className.indexOf("ok") >= 0) setStatus("bad", "connected, not saved");
  }

  async function start() {
    let cfg = { base: "", key: "" };
    try {
      cfg = await ScoreBridge.config();
    } catch (e) {
      ScoreBridge.logError("settings", "The add-in's storage could not be read: " + e.message);
    }
    $("url").value = cfg.base;
    $("key").value = cfg.key ? MASK : "";
    const ns = document.documentElement.dataset.namespace || "ML";
    $("example").textContent = "=" + ns + ".PREDICT(A2:F2)";
    ScoreBridge.onChange(renderErrors);
    renderErrors(ScoreBridge.state);
    $("connect").addEventListener("submit", save);
    $("sign-in").addEventListener("click", function () { once("sign-in", signIn); });
    $("sign-out").addEventListener("click", function () { once("sign-out", signOut); });
    $("url").addEventListener("change", function () { showKeyFor($("url").value.trim()); });
    $("clear").addEventListener("click", function () {
      ScoreBridge.clearCache();
      ScoreBridge.refreshStreams();
      recalculate();
    });
    $("outcome-model").addEventListener("change", function () {
      outcomes.chosen = true;
      modelChanged();
    });
    $("outcome-read").addEventListener("click", function () { whileBusy(useSelection); });
    $("outcome-send").addEventListener("click", function () { whileBusy(sendOutcomes); });
    setInterval(function () { renderErrors(ScoreBridge.state); }, 2000);
    const signedIn = await showSignIn();
    if (cfg.key || signedIn) refresh();
  }

  if (typeof Office !== "undefined" && Office.onReady) {
    Office.onReady(start);
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
