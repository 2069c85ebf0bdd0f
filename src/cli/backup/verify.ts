// `lb backup --verify`: after the run, the snapshot it published (or, when the
// source was unchanged, `latest`) is compared with the source (repo/verify-backup.ts),
// each difference printed on one line as it is found; any difference makes the
// run a failure (exit status 6). The repository may be here or, pushed over SSH,
// on the remote (verify-remote.ts); the source must be here for now.
import { lstatSync } from 'node:fs';
import type { ReadLog } from '../../agent/read-log.js';
import { isInside } from '../../diff/order.js';
import { Repository } from '../../repo/repository.js';
import { BackupVerification, type BackupChecked, type BackupDifference, type BackupVerifyOptions } from '../../repo/verify-backup.js';
import { Accounts } from '../../scan/accounts.js';
import type { Location } from '../../transport/address.js';
import type { SshOptions, SshSession } from '../../transport/ssh.js';
import { problemJson, problemLine } from '../../read/verify.js';
import { formatBytes } from '../format.js';
import { displayName, jsonName } from '../names.js';
import { UsageError, type Output } from '../output.js';
import type { Outcome } from './outcome.js';
import { sourceNow } from './source-now.js';
import { printSummary, type RunFacts } from './summary.js';
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

export interface VerifySetup {
  sourceRoot: string;
  /** Here, or on the remote the push reached. */
  repositoryPath: string;
  numericIds: boolean;
  readLog: ReadLog;
  /** The push's SSH connection, left open for the comparison, which closes it; absent for a repository here. */
  remote?: { session: SshSession; ssh: SshOptions };
}

/** Before anything runs: the source's part of the comparison runs here. */
export function refuseRemoteVerify(source: Location): void {
  if (source.kind !== 'remote') return;
  throw new UsageError(
    `--verify needs the source on this machine (comparing a remote source would need the agent to walk it again there, which this lb does not do yet); ` +
      `back up without it, then compare with rsync -anic --delete ${source.user ? source.user + '@' : ''}${source.host}:SOURCE/ REPOSITORY/latest/tree/`,
  );
}

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
    setup.remote?.session.close();
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
  const excused = setup.readLog.excused;
  const options: BackupVerifyOptions = {
    publishedNow: result.created,
    wasRead: setup.readLog.recordReads(),
    excused: (path) => excused.some((left) => left.equals(path) || isInside(path, left)),
  };
  const snapshot = result.created ? result.snapshot : null;
  const verification: Verification | null = setup.remote
    ? await RemoteVerification.start({ ...setup.remote, repositoryPath: setup.repositoryPath, sourceRoot: setup.sourceRoot, numericIds: setup.numericIds, snapshot, options })
    : localVerification(setup, snapshot, options);
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

/** Both parts here; null when there is no snapshot to compare with. */
function localVerification(setup: VerifySetup, snapshot: string | null, options: BackupVerifyOptions): Verification | null {
  const reader = Repository.open(setup.repositoryPath, 'read');
  const name = snapshot ?? reader.latest();
  if (name === null) return null;
  const repository = lstatSync(setup.repositoryPath, { bigint: true });
  const source = sourceNow({
    sourceRoot: setup.sourceRoot,
    isRepository: (stat) => stat.dev === repository.dev && stat.ino === repository.ino,
    // The repository side ran as this process, on this machine.
    ownerRule: { asRoot: process.getuid?.() === 0, numericIds: setup.numericIds, ownUid: process.getuid!(), ownGid: process.getgid!() },
    ownerNames: new Accounts(),
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
