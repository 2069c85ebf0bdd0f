// `lb backup --verify`: after the run, the snapshot it published (or, when the
// source was unchanged, `latest`) is compared with the source (repo/verify-backup.ts),
// each difference printed on one line as it is found; any difference makes the
// run a failure (exit status 6). Each part runs where its side is: the
// repository's here or, pushed over SSH, on the remote (verify-remote.ts); the
// source's here or, pulled, on the remote (verify-pull.ts).
import type { Selection } from '../../scan/selection.js';
import { lstatSync } from 'node:fs';
import type { ReadLog } from '../../agent/read-log.js';
import { sourceNow } from '../../agent/source-now.js';
import { Repository } from '../../repo/repository.js';
import { BackupVerification, type BackupChecked, type BackupDifference, type BackupVerifyOptions } from '../../repo/verify-backup.js';
import { Accounts } from '../../scan/accounts.js';
import type { SshOptions, SshSession } from '../../transport/ssh.js';
import { problemJson, problemLine } from '../../read/verify.js';
import { formatBytes } from '../format.js';
import { displayName, jsonName } from '../names.js';
import type { Output } from '../output.js';
import type { Outcome } from './outcome.js';
import { printSummary, type RunFacts } from './summary.js';
import { PulledVerification, type PulledSource } from './verify-pull.js';
import { RemoteVerification } from './verify-remote.js';

/** --json lists this many differences; the count covers them all. */
const LISTED = 1000;

export interface VerifyReport {
  snapshot: string;
  checked: BackupChecked;
  /** The first LISTED differences. */
  differences: object[];
  differenceCount: number;
}

export type VerifySetup = {
  /** Here, or on the remote the push reached. */
  repositoryPath: string;
  numericIds: boolean;
  /** --series: the snapshot is one of that series. */
  series?: string;
} & (
  | {
      /** The source is here, and what this run read of it. */
      sourceRoot: string;
      readLog: ReadLog;
      /** What the backup took from the source: the comparison walks it the same way. */
      selection?: Selection;
      /** The push's SSH connection, left open for the comparison, which closes it; absent for a repository here. */
      remote?: { session: SshSession; ssh: SshOptions };
    }
  /** A pull: the source's agent waits on the remote, with what the run read there. */
  | { pulled: PulledSource }
);

/**
 * Prints the run's summary and the comparison in their order (the summary first
 * as text; under --json one object carrying `verify`), and returns the
 * comparison's report: null when the run published nothing and found no
 * unchanged snapshot to compare with (out of time).
 */
export async function verifyBackup(out: Output, outcome: Outcome, facts: RunFacts, setup: VerifySetup): Promise<VerifyReport | null> {
  if (!out.asJson) printSummary(out, outcome, facts);
  let report: VerifyReport | null;
  try {
    report = await compare(out, outcome, setup);
  } finally {
    ('pulled' in setup ? setup.pulled.session : setup.remote?.session)?.close();
  }
  outcome.verify = report;
  if (out.asJson) printSummary(out, outcome, facts);
  return report;
}

/** What either comparison gives: the snapshot compared, its differences as they are found, and what was checked. */
interface Verification {
  snapshot: string;
  checked: BackupChecked;
  differences(): AsyncGenerator<BackupDifference>;
}

async function compare(out: Output, outcome: Outcome, setup: VerifySetup): Promise<VerifyReport | null> {
  const { result } = outcome;
  if (result.incomplete) {
    out.line('  not verified: no snapshot was made');
    return null;
  }
  const snapshot = result.created ? result.snapshot : null;
  const verification = await start(setup, snapshot, result.created);
  if (verification === null) {
    out.line('  not verified: no snapshot was made');
    return null;
  }
  const report: VerifyReport = { snapshot: verification.snapshot, checked: verification.checked, differences: [], differenceCount: 0 };
  for await (const difference of verification.differences()) {
    if (report.differenceCount++ < LISTED) report.differences.push(differenceJson(difference));
    out.warn(`verify: ${differenceLine(difference)}`);
  }
  const c = report.checked;
  const read = `${c.filesReread} files re-read, ${c.objectsReread} stored objects re-hashed (${formatBytes(c.bytesRead)} read in all)`;
  if (report.differenceCount > 0) out.warn(`verify: snapshot ${report.snapshot} differs from the source in ${report.differenceCount} place(s); ${c.entries} entries compared, ${read}`);
  else out.line(`  verified: ${c.entries} entries, ${read}; snapshot ${report.snapshot} matches the source`);
  return report;
}

/** Where each part runs: the source's where the source and the run's read log are, the repository's where it is. */
async function start(setup: VerifySetup, snapshot: string | null, publishedNow: boolean): Promise<Verification | null> {
  if ('pulled' in setup) return PulledVerification.start(setup.pulled, setup.repositoryPath, snapshot, publishedNow, setup.series ?? null);
  const options: BackupVerifyOptions = {
    publishedNow,
    wasRead: setup.readLog.recordReads(),
    excused: (path) => setup.readLog.isExcused(path),
  };
  if (setup.remote) {
    return RemoteVerification.start({ ...setup.remote, repositoryPath: setup.repositoryPath, series: setup.series, sourceRoot: setup.sourceRoot, numericIds: setup.numericIds, selection: setup.selection, snapshot, options });
  }
  return localVerification(setup, snapshot, options);
}

/** Both parts here; null when there is no snapshot to compare with. */
function localVerification(setup: { repositoryPath: string; series?: string; sourceRoot: string; numericIds: boolean; selection?: Selection }, snapshot: string | null, options: BackupVerifyOptions): Verification | null {
  const reader = Repository.open(setup.repositoryPath, 'read', setup.series ?? null);
  const name = snapshot ?? reader.latest();
  if (name === null) return null;
  const repository = lstatSync(setup.repositoryPath, { bigint: true });
  const source = sourceNow({
    sourceRoot: setup.sourceRoot,
    isRepository: (stat) => stat.dev === repository.dev && stat.ino === repository.ino,
    // The repository side ran as this process, on this machine.
    ownerRule: { asRoot: process.getuid?.() === 0, numericIds: setup.numericIds, ownUid: process.getuid!(), ownGid: process.getgid!() },
    ownerNames: new Accounts(),
    selection: setup.selection,
  });
  const verification = new BackupVerification(reader, name, source, options);
  return { snapshot: name, checked: verification.checked, differences: () => verification.differences() };
}

function differenceLine(difference: BackupDifference): string {
  if (difference.side === 'repository') return problemLine(difference.problem);
  return `${difference.path.length === 0 ? '.' : displayName(difference.path)}: ${difference.detail}`;
}

function differenceJson(difference: BackupDifference): object {
  if (difference.side === 'repository') return { side: 'repository', ...problemJson(difference.problem) };
  return { side: 'source', ...jsonName(difference.path.length === 0 ? Buffer.from('.') : difference.path), detail: difference.detail };
}
