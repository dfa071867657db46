// Prepended (--extern-pre-js) to the ES-module build. Emscripten 3.1.6's Node path calls `require`
// and reads `__dirname`, which an ES module does not have: define both under Node only, so the
// same file loads in Node 20 and stays browser-safe.
var require, __dirname;
if (typeof process === 'object' && process.versions && process.versions.node) {
  const { createRequire } = await import('node:module');
  const { fileURLToPath } = await import('node:url');
  require = createRequire(import.meta.url);
  __dirname = fileURLToPath(new URL('.', import.meta.url));
}
