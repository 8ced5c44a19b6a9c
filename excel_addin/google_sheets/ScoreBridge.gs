/**
 * ScoreBridge for Google Sheets: =PREDICT(A2:F2) and =PREDICT(A2:F100, "churn").
 *
 * Paste this file into Extensions → Apps Script of a spreadsheet, then use the ScoreBridge menu
 * (reload the sheet once) to enter the server URL and an API key. Calls go to the same batch
 * endpoint the Excel add-in uses: a whole block is one request.
 */

var SCOREBRIDGE_URL = "SCOREBRIDGE_URL";
var SCOREBRIDGE_KEY = "SCOREBRIDGE_API_KEY";

/** Adds the ScoreBridge menu when the spreadsheet opens. */
function onOpen() {
  SpreadsheetApp.getUi().createMenu("ScoreBridge")
    .addItem("Set server and API key…", "scorebridgeSetup")
    .addToUi();
}

/** Asks for the server URL and the key; they are kept in this document's properties. */
function scorebridgeSetup() {
  var ui = SpreadsheetApp.getUi();
  var url = ui.prompt("ScoreBridge server URL (https://…)").getResponseText();
  var key = ui.prompt("ScoreBridge API key (score scope)").getResponseText();
  PropertiesService.getDocumentProperties().setProperties({
    SCOREBRIDGE_URL: url.replace(/\/+$/, ""),
    SCOREBRIDGE_API_KEY: key
  });
}

/**
 * Predicts with a deployed model: one value per row of the range. A first row that names the
 * model's columns is matched by name; otherwise values are read in the model's column order.
 *
 * @param {A2:F2} range The input values.
 * @param {"churn"} model The model (optional: the server's default model).
 * @return One prediction per row.
 * @customfunction
 */
function PREDICT(range, model) {
  var props = PropertiesService.getDocumentProperties();
  var url = props.getProperty(SCOREBRIDGE_URL);
  var key = props.getProperty(SCOREBRIDGE_KEY);
  if (!url || !key) {
    throw new Error("Set the ScoreBridge server and API key first (ScoreBridge menu)");
  }
  var values = Array.isArray(range) ? (Array.isArray(range[0]) ? range : [range]) : [[range]];
  var response = UrlFetchApp.fetch(url + "/excel/v1/batch", {
    method: "post",
    contentType: "application/json",
    headers: { "X-API-Key": key, "X-ScoreBridge-Client": "sheets" },
    payload: JSON.stringify({ probabilities: false, calls: [{ model: model || null, values: values }] }),
    muteHttpExceptions: true
  });
  var body = JSON.parse(response.getContentText() || "{}");
  if (response.getResponseCode() !== 200) {
    throw new Error(body.detail || ("ScoreBridge answered HTTP " + response.getResponseCode()));
  }
  var result = body.results[0];
  if (result.error) throw new Error(result.error);
  var problems = {};
  (result.errors || []).forEach(function (e) {
    var text = e.column ? e.column + ": " + e.message : e.message;
    problems[e.row] = problems[e.row] ? problems[e.row] + "; " + text : text;
  });
  var blank = {};
  (result.blank || []).forEach(function (i) { blank[i] = true; });
  var rows = result.predictions.map(function (p, i) {
    if (blank[i]) return [""];
    if (problems[i] !== undefined) return ["#ERROR: " + problems[i]];
    return [p];
  });
  if (rows.length === 1 && problems[0] !== undefined) throw new Error(problems[0]);
  return rows;
}
