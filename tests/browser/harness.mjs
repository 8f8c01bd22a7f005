// Shared set-up for browser tests: start the real server binary on port 0 with a fresh
// SQLite data dir, launch the system Chromium, and stop both (waiting for the server
// process to exit) when the test ends.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function serverBinary() {
  const bin = process.env.CHATAPP_SERVER_BIN;
  if (!bin) {
    throw new Error('set CHATAPP_SERVER_BIN to the chatapp-server binary (scripts/test does)');
  }
  return bin;
}

/** Starts chatapp-server; resolves once it printed `listening on http://…`.
 *  `opts.dataDir` reuses a data dir (kept on stop), `opts.listen` a fixed address (restarts). */
export async function startServer(extraArgs = [], opts = {}) {
  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'chatapp-browser-'));
  const env = { ...process.env, RUST_LOG: 'warn' };
  delete env.DATABASE_URL;
  const child = spawn(
    serverBinary(),
    ['--listen', opts.listen ?? '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'inherit'], env },
  );
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const base = await new Promise((resolve, reject) => {
    lines.once('line', (line) => {
      const m = /^listening on (http:\/\/\S+)$/.exec(line);
      if (m) resolve(m[1]);
      else reject(new Error(`unexpected first line: ${line}`));
    });
    exited.then(({ code }) => reject(new Error(`server exited early with ${code}`)));
  });
  lines.on('line', () => {});
  return {
    base,
    dataDir,
    async stop() {
      child.kill('SIGTERM');
      const result = await exited;
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
      return result;
    },
    /** Ends the process at once (no graceful shutdown) and waits for it. */
    async kill() {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // a fake microphone (a tone) that needs no permission prompt, for voice messages
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}

/** JSON request with a bearer token (the test's side channel, not the UI's). */
export async function api(base, method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  return { status: resp.status, body: text ? JSON.parse(text) : null };
}
