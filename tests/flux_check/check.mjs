// Parses and type-checks Flux texts with InfluxData's Flux language server (@influxdata/flux-lsp-browser, WASM).
//
// stdin:  JSON [{"name": "...", "text": "..."}, ...]
// stdout: JSON [{"name": "...", "diagnostics": [{"severity", "message", "line", "character"}, ...]}, ...]
//         in the input's order; severity as in LSP: 1 error, 2 warning, 3 information, 4 hint.
// Exit 0 when every text was checked (whatever was found), 2 when the check itself failed.
//
// Each text is opened as the only file of its own folder: the server type-checks the files of one folder as one
// package, so texts sharing a folder would see each other's names and errors.
import { register } from 'node:module';

// The server logs through console.log/info/debug; stdout is reserved for the result.
for (const level of ['log', 'info', 'debug']) console[level] = (...args) => console.error(...args);

register(new URL('./hooks.mjs', import.meta.url));
const { Lsp } = await import(
  new URL('./node_modules/@influxdata/flux-lsp-browser/flux-lsp-browser_bg.js', import.meta.url)
);

const TIMEOUT_MS = 60_000;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function fail(message) {
  process.stderr.write(`flux check: ${message}\n`);
  process.exit(2);
}

let documents;
try {
  documents = JSON.parse(await readStdin());
} catch (error) {
  fail(`stdin is not JSON: ${error.message}`);
}
if (!Array.isArray(documents) || documents.some((d) => typeof d?.name !== 'string' || typeof d?.text !== 'string')) {
  fail('expected a JSON list of {"name": string, "text": string} on stdin');
}

const published = new Map(); // uri -> diagnostics
let wake = () => {};
const server = new Lsp();
server.onMessage((raw) => {
  const message = JSON.parse(raw);
  if (message.method === 'textDocument/publishDiagnostics') {
    published.set(message.params.uri, message.params.diagnostics);
    wake();
  }
});
server.run().then(
  () => fail('the Flux language server stopped'),
  (error) => fail(`the Flux language server failed: ${error}`),
);

let nextId = 1;
async function request(method, params) {
  const response = JSON.parse(await server.send(JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params })));
  if (response.error) fail(`${method}: ${JSON.stringify(response.error)}`);
  return response.result;
}
async function notify(method, params) {
  await server.send(JSON.stringify({ jsonrpc: '2.0', method, params }));
}

const info = await request('initialize', { processId: null, rootUri: null, capabilities: {} });
await notify('initialized', {});

const uris = documents.map((_, i) => `file:///templog-flux-check/${i}/query.flux`);
for (const [i, document] of documents.entries()) {
  await notify('textDocument/didOpen', {
    textDocument: { uri: uris[i], languageId: 'flux', version: 1, text: document.text },
  });
}

const deadline = Date.now() + TIMEOUT_MS;
while (!uris.every((uri) => published.has(uri))) {
  const left = deadline - Date.now();
  if (left <= 0) fail(`no diagnostics for ${uris.filter((uri) => !published.has(uri)).length} text(s)`);
  await new Promise((resolve) => {
    wake = resolve;
    setTimeout(resolve, Math.min(left, 100));
  });
}

const results = documents.map((document, i) => ({
  name: document.name,
  diagnostics: published.get(uris[i]).map((d) => ({
    severity: d.severity ?? 1,
    message: d.message,
    line: d.range.start.line + 1,
    character: d.range.start.character + 1,
  })),
}));
process.stdout.write(JSON.stringify({ server: info.serverInfo, results }) + '\n');
process.exit(0);
