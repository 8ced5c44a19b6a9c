// ESLint for the add-in's served JavaScript (run by tests/excel_addin/test_eslint.py in `make test`).
// src/ holds classic scripts, not modules: taskpane.html loads office.js, then functions.js (which
// defines the global ScoreBridge), then taskpane.js, all sharing one browser/Office context.
import js from "@eslint/js";
import globals from "globals";

const office = {
  Office: "readonly",
  OfficeRuntime: "readonly",
  CustomFunctions: "readonly",
  Excel: "readonly",
};

export default [
  { ignores: ["tests/"] }, // Node test files, not served; only src/ is linted
  js.configs.recommended,
  {
    files: ["src/**/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: { ...globals.browser, ...office },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    // defined by functions.js, which the page loads first
    files: ["src/taskpane.js"],
    languageOptions: { globals: { ScoreBridge: "readonly" } },
  },
];
