// Parses an AsyncAPI document with the official parser (@asyncapi/parser).
// Usage: node parse.mjs FILE
// Prints every diagnostic; exits 1 when any is an error (or the file cannot be read).
import { readFile } from "node:fs/promises";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

const [file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node parse.mjs FILE");
  process.exit(2);
}
const { document, diagnostics } = await new Parser().parse(await readFile(file, "utf8"), {
  source: file,
});
for (const d of diagnostics) {
  const where = d.path.length ? d.path.join("/") : "(document)";
  console.log(`${SEVERITY[d.severity]} ${d.code} at ${where}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).length;
if (errors > 0 || document === undefined) {
  console.log(`${file}: ${errors} error(s)`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()}, ${diagnostics.length} diagnostic(s)`);
