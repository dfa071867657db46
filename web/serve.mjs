#!/usr/bin/env node
// BitLens demo server: a small static server (Node built-ins only) over the repository.
//   /            → web/index.html
//   /web/...     → web/ (the page, its worker, the WASM build in web/lib/)
//   /web/vendor/ → the browser builds of the page's npm dependencies, straight from node_modules
//   /models/...  → models/ (the shipped models and the default evaluation set)
// Binds 127.0.0.1 only. Port: --port N, else $PORT, else 8080; a busy port falls back to a free one
// (--port 0 always picks a free one). Prints the URL on stdout as "BitLens demo: http://127.0.0.1:N/".
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

// Browser builds of the page's dependencies (devDependencies in package.json); no CDN, no bundler.
const VENDOR = {
  'd3.js': 'node_modules/d3/dist/d3.min.js',
  'plot.js': 'node_modules/@observablehq/plot/dist/plot.umd.min.js',
  'fflate.js': 'node_modules/fflate/esm/browser.js',
};

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  // .gz, .safetensors, IDX (…-ubyte) and anything else: application/octet-stream, never Content-Encoding.
};

export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function resolvePath(pathname) {
  if (pathname === '/' || pathname === '/index.html') return join(root, 'web/index.html');
  if (pathname.startsWith('/web/vendor/')) {
    const rel = VENDOR[pathname.slice('/web/vendor/'.length)];
    return rel ? join(root, rel) : null;
  }
  if (!pathname.startsWith('/web/') && !pathname.startsWith('/models/')) return null;
  const p = normalize(join(root, pathname));
  if (!p.startsWith(join(root, 'web') + sep) && !p.startsWith(join(root, 'models') + sep)) return null;
  return p;
}

function handler(req, res) {
  const headers = {
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cache-Control': 'no-cache',
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...headers, Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
    res.end('method not allowed\n');
    return;
  }
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
  } catch {
    res.writeHead(400, { ...headers, 'Content-Type': 'text/plain' });
    res.end('bad request\n');
    return;
  }
  const file = pathname.includes('\0') ? null : resolvePath(pathname);
  let st = null;
  try { if (file) st = statSync(file); } catch { /* not found */ }
  if (!st || !st.isFile()) {
    const hint = pathname.startsWith('/web/lib/') ? ' (run `npm run build:wasm` first)'
      : pathname.startsWith('/web/vendor/') ? ' (run `npm install` first)' : '';
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`not found: ${pathname}${hint}\n`);
    return;
  }
  res.writeHead(200, {
    ...headers,
    'Content-Type': MIME[extname(file).toLowerCase()] || 'application/octet-stream',
    'Content-Length': st.size,
  });
  if (req.method === 'HEAD') { res.end(); return; }
  createReadStream(file).on('error', () => res.destroy()).pipe(res);
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    const onError = (e) => { server.off('listening', onListening); reject(e); };
    const onListening = () => { server.off('error', onError); resolve(server.address().port); };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, '127.0.0.1');
  });
}

/** Starts the server; resolves to { server, port, url }. A busy port falls back to a free one. */
export async function start({ port = 8080, quiet = false } = {}) {
  const server = createServer(handler);
  let actual;
  try {
    actual = await listen(server, port);
  } catch (e) {
    if (e.code !== 'EADDRINUSE' || port === 0) throw e;
    if (!quiet) console.error(`port ${port} is busy; using a free port instead`);
    actual = await listen(server, 0);
  }
  return { server, port: actual, url: `http://127.0.0.1:${actual}/` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const i = process.argv.indexOf('--port');
  const arg = i > 0 ? process.argv[i + 1] : undefined;
  const port = Number(arg ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: bad port '${arg ?? process.env.PORT}' (expected 0–65535)`);
    process.exit(2);
  }
  const { url } = await start({ port });
  console.log(`BitLens demo: ${url}`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
}
