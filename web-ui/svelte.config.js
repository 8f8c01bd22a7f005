// Svelte compiler options for vite-plugin-svelte: runes everywhere; TypeScript in
// <script lang="ts"> is stripped by Svelte itself (no preprocessor needed).
export default {
  compilerOptions: { runes: true },
};
