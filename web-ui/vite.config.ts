import { defineConfig } from 'vite';

// The built UI is embedded in chatapp-server and served from the site root;
// the desktop app loads the same dist/ folder.
export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
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
});
