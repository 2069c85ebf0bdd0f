// The agent's entry point: bundled into one file with Node built-ins only, run
// as a child process next to the repository (locally, or on a remote over SSH).
import { serve } from './serve.js';

serve(process.stdin, process.stdout).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`lb agent: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
