// The one step after `custom-functions-metadata generate`: it adds the top-level
// "allowErrorForDataTypeAny": true, which the generator has no JSDoc tag for (Microsoft documents
// the property for hand-written metadata only). With it, Excel passes an error cell to an `any`
// parameter as an error object instead of skipping the whole call, so one #N/A in a range fails
// one row, not the formula. Run by `npm run metadata`; tests/excel_addin/test_node.py applies it
// to a freshly generated file and compares the result with src/functions.json.
//   node tools/finish_metadata.mjs src/functions.json
import fs from "node:fs";

const file = process.argv[2];
if (!file) {
  console.error("usage: node tools/finish_metadata.mjs FUNCTIONS.json");
  process.exit(2);
}
const generated = JSON.parse(fs.readFileSync(file, "utf8"));
const { allowCustomDataForDataTypeAny, functions, ...rest } = generated;
const finished = { allowCustomDataForDataTypeAny, allowErrorForDataTypeAny: true, functions, ...rest };
fs.writeFileSync(file, JSON.stringify(finished, null, 4));
