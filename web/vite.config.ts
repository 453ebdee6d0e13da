// The console's build: web/dist, which the gateway serves at / (services/gateway/src/console).
import { defineConfig } from 'vite';

export default defineConfig({
  resolve: {
    // the SDK's TypeScript sources (its exports condition for this repository), as its own tests use them
    conditions: ['@streamline/source', 'browser', 'module', 'import', 'default'],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // the CSP allows no inline scripts or styles: no inlined assets or module-preload polyfill
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // `npm run dev -w web` against a gateway on :4000
    proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true }, '/files': 'http://127.0.0.1:4000' },
  },
});
