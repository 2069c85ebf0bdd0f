#!/usr/bin/env node
// Runs a TypeScript benchmark: bundles bench/NAME.ts (npm packages stay external) into dist/bench and runs it.
//   node bench/run.mjs NAME [args...]
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const [name, ...args] = process.argv.slice(2);
const outfile = `dist/bench/${name}.mjs`;
await build({ entryPoints: [`bench/${name}.ts`], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
const r = spawnSync(process.execPath, [outfile, ...args], { stdio: 'inherit' });
process.exitCode = r.status ?? 1;
