// Bundles the CLI (npm dependencies stay external) and the agent (Node built-ins
// only, one self-contained file that can be pushed to a remote and run there).
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning' };

await Promise.all([
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', format: 'esm', packages: 'external' }),
  // CommonJS so it runs from stdin or any file name on the remote without a package.json.
  build({ ...common, entryPoints: ['src/agent/main.ts'], outfile: 'dist/agent.cjs', format: 'cjs', sourcemap: false }),
]);
