// The agent's entry point: bundled into one file with Node built-ins only, run
// as a child process next to the repository (locally, or on a remote over SSH),
// or, with `source CONFIG`, next to a remote source that is being pulled.
import { Sender, type SenderSetup } from './sender.js';
import { serve } from './serve.js';

function fail(error: unknown): void {
  process.stderr.write(`lb agent: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}

async function runSource(encoded: string): Promise<void> {
  // Written by the invoking lb on the ssh command line: trusted as its own arguments are.
  const config = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Pick<SenderSetup, 'sourceRoot' | 'repository' | 'options' | 'budgetMs'>;
  const setup: SenderSetup = { ...config, remote: true, awaitAbort: false, onLog: (line) => process.stderr.write(line + '\n') };
  await new Sender(process.stdin, process.stdout, setup).run();
}

const [role, config] = process.argv.slice(2);
if (role === 'source' && config) {
  runSource(config).catch((error) => {
    fail(error);
    process.exit(); // at once: on a pipe (sshd's), only this exit shows the repository side that its input ended
  });
} else serve(process.stdin, process.stdout).then((outcome) => (process.exitCode = outcome.error ? 1 : 0), fail);
