import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

// The built UI is embedded in chatapp-server and served from the site root;
// the desktop app loads the same dist/ folder.
export default defineConfig({
  base: '/',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The server's CSP allows no inline script or style: never inline assets as data: for scripts.
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev`: forward API and WebSocket calls to a locally running
    // chatapp-server (its default listen address). The Host header is kept,
    // so the page and the API look same-origin to the server.
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', ws: true },
      '/healthz': { target: 'http://127.0.0.1:8080' },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
