/* The task pane: server URL and API key (add-in storage only), connection status, the model list
 * and the last errors in full. Shares its JavaScript context with the custom functions. */
"use strict";

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
      }).catch(function () { /* shown in the errors list */ });
    }
  }

  const MASK = "••••••••";

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
    $("url").addEventListener("change", function () { showKeyFor($("url").value.trim()); });
    $("clear").addEventListener("click", function () {
      ScoreBridge.clearCache();
      ScoreBridge.refreshStreams();
      recalculate();
    });
    setInterval(function () { renderErrors(ScoreBridge.state); }, 2000);
    if (cfg.key) refresh();
  }

  if (typeof Office !== "undefined" && Office.onReady) {
    Office.onReady(start);
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
