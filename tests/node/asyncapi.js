// Parse an AsyncAPI document with @asyncapi/parser; print every diagnostic; exit 1 on any error.
// Usage: node asyncapi.js <path to asyncapi.yaml>
const { Parser, fromFile } = require("@asyncapi/parser");

(async () => {
  const { document, diagnostics } = await fromFile(new Parser(), process.argv[2]).parse();
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) {
    console.log(`${d.severity === 0 ? "error" : "note"} ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
  }
  console.log(document && !errors.length ? "valid" : `invalid: ${errors.length} errors`);
  process.exit(document && !errors.length ? 0 : 1);
})();
