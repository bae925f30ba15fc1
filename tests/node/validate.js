// Validate JSON documents against the project's schemas with ajv (JSON Schema 2020-12), offline: every
// schema file is registered under its $id first, so relative $refs resolve without the network.
// Usage: node validate.js <schemas dir> <schema path relative to it> <document.json> [<schema> <doc> ...]
const fs = require("fs");
const path = require("path");
const Ajv2020 = require("ajv/dist/2020");
const addFormats = require("ajv-formats");

const root = process.argv[2];
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
function register(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) register(file);
    else if (entry.name.endsWith(".json")) ajv.addSchema(JSON.parse(fs.readFileSync(file, "utf8")));
  }
}
register(root);

let failed = 0;
const args = process.argv.slice(3);
for (let i = 0; i < args.length; i += 2) {
  const schema = JSON.parse(fs.readFileSync(path.join(root, args[i]), "utf8"));
  const validate = ajv.getSchema(schema.$id);
  const document = JSON.parse(fs.readFileSync(args[i + 1], "utf8"));
  if (validate(document)) {
    console.log(`valid ${args[i]} ${args[i + 1]}`);
  } else {
    failed += 1;
    console.log(`invalid ${args[i]} ${args[i + 1]}: ${JSON.stringify(validate.errors)}`);
  }
}
process.exit(failed ? 1 : 0);
