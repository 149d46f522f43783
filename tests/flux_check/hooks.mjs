// Module hooks that let Node load @influxdata/flux-lsp-browser, which is built for bundlers (wasm-bindgen's
// "bundler" target): its .js files are ES modules in a package without "type": "module", and its glue imports
// the .wasm file as an ES module. Here those .js files load as ES modules and the .wasm file loads through a
// small generated module that instantiates it with the glue's exports as its imports.
import { readFile } from 'node:fs/promises';

const PACKAGE = '/node_modules/@influxdata/flux-lsp-browser/';

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.includes(PACKAGE)) {
    return nextLoad(url, context);
  }
  if (url.endsWith('.js')) {
    return nextLoad(url, { ...context, format: 'module' });
  }
  if (url.endsWith('.wasm')) {
    const module = new WebAssembly.Module(await readFile(new URL(url)));
    const sources = [...new Set(WebAssembly.Module.imports(module).map((entry) => entry.module))];
    const lines = [
      "import { readFileSync } from 'node:fs';",
      ...sources.map((source, i) => `import * as imports${i} from ${JSON.stringify(source)};`),
      'const module = new WebAssembly.Module(readFileSync(new URL(import.meta.url)));',
      `const instance = new WebAssembly.Instance(module, {${sources.map((s, i) => `${JSON.stringify(s)}: imports${i}`).join(', ')}});`,
      ...WebAssembly.Module.exports(module).map(({ name }) => `export const ${name} = instance.exports[${JSON.stringify(name)}];`),
    ];
    return { format: 'module', source: lines.join('\n'), shortCircuit: true };
  }
  return nextLoad(url, context);
}
