// The agent's entry point: bundled into one file with Node built-ins only, run
// as a child process next to the repository (locally, or on a remote over SSH),
// or next to a remote source that is being pulled. What it is asked to do (its
// role) is named by the first message on its input (roles.ts); each role is one
// function below, which reads that message again, validated its own way.
//
// An agent never outlives lb's interest in it: when its connection closes (stdin
// ends, stdout breaks) or a signal comes (SIGHUP, SIGINT, SIGTERM), the
// repository side aborts (nothing published, lock released, leftovers cleared)
// and exits; the source side, which holds no lock, exits at once.
import '../repo/thread-pool-size.js'; // first: it sets the thread pool's size before anything uses it
import { realpathSync } from 'node:fs';
import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import { FRAME_JSON, ProtocolError, readFirstFrame } from '../protocol/frames.js';
import { decodePullRequest, type PullRequest } from '../protocol/messages.js';
import { Selection, choosesPaths } from '../scan/selection.js';
import { storeOf, storeSelectionRefusal } from './store-source.js';
import { pruneHere } from './prune.js';
import { ReadLog } from './read-log.js';
import { sourceRootProblem } from './source-root.js';
import { roleOf, type RoleKind } from './roles.js';
import { Sender, type SenderSetup } from './sender.js';
import { readRepository } from './read.js';
import { restoreFrom, restoreTo } from './restore.js';
import { serveWriterThread } from './restore-thread.js';
import { serve } from './serve.js';
import { verifyBackupHere } from './verify-backup.js';
import { verifyPulledSource } from './verify-pulled-source.js';

const STOP_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM'] as const;
/** Once its role has ended, the agent leaves within this long, whatever is still pending (a peer that stopped reading, say). */
const EXIT_GRACE_MS = 3000;

function exitSoon(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}

function fail(error: unknown): void {
  process.stderr.write(`lb agent: ${error instanceof Error ? error.message : String(error)}\n`);
  exitSoon(1);
}

/** The pull request the repository side sends first, validated like every message. */
async function pullRequest(): Promise<PullRequest> {
  const frame = await readFirstFrame(process.stdin);
  if (frame.type !== FRAME_JSON) throw new ProtocolError('the repository side began with file data');
  return decodePullRequest(frame.message);
}

async function runSource(): Promise<void> {
  for (const signal of STOP_SIGNALS) process.once(signal, () => process.exit(128 + constants.signals[signal]));
  // lb went away (or gave up on this run) before the end: nobody is left to send to.
  process.stdin.once('end', () => process.exit(1));
  process.stdin.once('error', () => process.exit(1));
  process.stdout.once('error', () => process.exit(1));
  const request = await pullRequest();
  // The walk starts at the directory a symlinked root names, as a local source's does.
  const sourceRoot = resolvedRoot(request.sourceRoot);
  const setup: SenderSetup = {
    sourceRoot,
    repository: request.repository,
    options: request.options,
    budgetMs: request.budgetMs,
    remote: true,
    awaitAbort: false,
    selection: pulledSelection(request, sourceRoot),
  };
  if (!request.verify) {
    await new Sender(process.stdin, process.stdout, setup).run();
    exitSoon(0);
    return;
  }
  // The backup and the comparison each read lb through a stream of their own (the backup's reader ends
  // its stream), stdin flowing into one then the other: a paused stdin would let the process end.
  const replies = process.stdin.pipe(new PassThrough());
  const readLog = new ReadLog();
  await new Sender(replies, process.stdout, { ...setup, readLog }).run();
  process.stdin.unpipe(replies);
  const requests = process.stdin.pipe(new PassThrough());
  await verifyPulledSource(requests, process.stdout, { sourceRoot: setup.sourceRoot, numericIds: request.options.numericIds, readLog, selection: setup.selection });
  process.exit(0); // every message is written: nothing to wait for
}

/**
 * The selection lb asked for, compiled here (a bad pattern or a listed path missing from this source ends
 * the run before its hello: nothing is written on the repository side).
 */
function pulledSelection(request: PullRequest, sourceRoot: string): Selection | undefined {
  if (!request.selection) return undefined;
  if (request.options.purpose === 'catalogonly' && storeOf(sourceRoot) && choosesPaths(request.selection)) throw new Error(storeSelectionRefusal(request.sourceRoot));
  const selection = new Selection(request.selection);
  if (sourceRootProblem(sourceRoot) === null) selection.fileList?.check(sourceRoot, 'the file list');
  return selection;
}

/** The real path when there is one; otherwise the path as given, for the sender's own check to report. */
function resolvedRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    return root;
  }
}

function runRepositorySide(): void {
  let stoppedBy: (typeof STOP_SIGNALS)[number] | null = null;
  let ended = false;
  // Ending the input makes serve() abort as it does when the source goes away.
  const stop = (reason: Error) => process.stdin.destroy(reason);
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      if (stoppedBy || ended) return; // after the end, the outcome stands and the agent is leaving anyway
      stoppedBy = signal;
      const reason = `the repository side (lb agent) was stopped by ${signal}; no snapshot was made`;
      // Said on stderr too: the source side may find its pipe broken before it reads the error message.
      process.stderr.write(reason + '\n');
      stop(new Error(reason));
    });
  }
  process.stdout.on('error', (error) => stop(error));
  serve(process.stdin, process.stdout).then((outcome) => {
    ended = true;
    exitSoon(stoppedBy ? 128 + constants.signals[stoppedBy] : outcome.error ? 1 : 0);
  }, fail);
}

/** A read command runs here and its output goes back to lb; it holds no lock, so it leaves at once when stopped. */
async function runReader(): Promise<void> {
  for (const signal of STOP_SIGNALS) process.once(signal, () => process.exit(128 + constants.signals[signal]));
  process.stdout.once('error', () => process.exit(1));
  await readRepository(process.stdin, process.stdout, () => process.exit(1));
  process.exit(0); // every message is written: nothing to wait for (stdin, left open by lb, would keep the agent)
}

/** `lb backup --verify`'s repository part runs here; like a reader, it holds no lock and leaves at once when stopped. */
async function runBackupVerifier(): Promise<void> {
  for (const signal of STOP_SIGNALS) process.once(signal, () => process.exit(128 + constants.signals[signal]));
  process.stdout.once('error', () => process.exit(1));
  await verifyBackupHere(process.stdin, process.stdout, () => process.exit(1));
  process.exit(0);
}

/** A restore's either end here; it holds no lock, so it leaves at once when stopped or when lb goes away. */
async function runRestore(role: 'restore-from' | 'restore-to'): Promise<void> {
  for (const signal of STOP_SIGNALS) process.once(signal, () => process.exit(128 + constants.signals[signal]));
  process.stdout.once('error', () => process.exit(1));
  if (role === 'restore-from') await restoreFrom(process.stdin, process.stdout, () => process.exit(1));
  else await restoreTo(process.stdin, process.stdout);
  process.exit(0); // every message is written: nothing to wait for
}

/** `lb prune host:REPO` runs here; crash-safe wherever it stops, so a signal or lb going away just ends it. */
async function runPruner(): Promise<void> {
  for (const signal of STOP_SIGNALS) process.once(signal, () => process.exit(128 + constants.signals[signal]));
  process.stdout.once('error', () => process.exit(1));
  await pruneHere(process.stdin, process.stdout);
  process.exit(0);
}

/** One function per role, by the kind of the first message. */
const ROLES: Record<RoleKind, () => Promise<void> | void> = {
  hello: runRepositorySide,
  pull: runSource,
  read: runReader,
  'verify-backup': runBackupVerifier,
  'restore-from': () => runRestore('restore-from'),
  'restore-to': () => runRestore('restore-to'),
  prune: runPruner,
};

/** Reads the first message without taking it, and hands the input to the role it names. */
async function start(): Promise<void> {
  const role = roleOf(await readFirstFrame(process.stdin, true));
  await ROLES[role]();
}

// The bundle also runs a restore's writer thread (restore-thread.ts), in lb or in an agent.
if (!serveWriterThread()) {
  start().catch((error) => {
    fail(error);
    process.exit(); // at once: on a pipe (sshd's), only this exit shows the peer that its input ended
  });
}
