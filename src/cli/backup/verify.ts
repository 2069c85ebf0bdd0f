// `lb backup --verify`: after the run, the snapshot it published (or, when the
// source was unchanged, `latest`) is compared with the source (repo/verify-backup.ts),
// each difference printed on one line as it is found; any difference makes the
// run a failure (exit status 6). Both sides must be on this machine for now.
import { lstatSync } from 'node:fs';
import type { ReadLog } from '../../agent/read-log.js';
import { isInside, parentPath } from '../../diff/order.js';
import { ownerFor, type OwnerRule } from '../../diff/plan.js';
import { sha256OfFile } from '../../repo/hash-file.js';
import { Repository } from '../../repo/repository.js';
import { BackupVerification, type BackupChecked, type BackupDifference } from '../../repo/verify-backup.js';
import type { SourceEntry, SourceSide } from '../../repo/verify-source.js';
import { Accounts } from '../../scan/accounts.js';
import { LinkGroups } from '../../scan/link-groups.js';
import { walk, type ScanEntry } from '../../scan/walk.js';
import type { Location } from '../../transport/address.js';
import { problemJson, problemLine } from '../../read/verify.js';
import { formatBytes } from '../format.js';
import { displayName, jsonName } from '../names.js';
import { UsageError, type Output } from '../output.js';
import type { Outcome } from './outcome.js';
import { printSummary, type RunFacts } from './summary.js';

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
  repositoryPath: string;
  numericIds: boolean;
  readLog: ReadLog;
}

/** Before anything runs: the comparison needs both sides here. */
export function refuseRemoteVerify(source: Location, repository: Location): void {
  const remote = source.kind === 'remote' ? source : repository.kind === 'remote' ? repository : null;
  if (!remote) return;
  throw new UsageError(
    `--verify needs the source and the repository on this machine (reading the remote ${remote === source ? 'source' : 'repository'} ` +
      `needs the agent's read role, which this lb does not have yet); back up without it, then compare with rsync -anic --delete SOURCE/ REPOSITORY/latest/tree/`,
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
  const report = await compare(out, outcome, setup);
  outcome.verify = report;
  if (out.asJson) printSummary(out, outcome, facts);
  return report;
}

async function compare(out: Output, outcome: Outcome, setup: VerifySetup): Promise<VerifyReport | null> {
  const { result } = outcome;
  const reader = Repository.open(setup.repositoryPath, 'read');
  const snapshot = result.incomplete ? null : result.created ? result.snapshot : reader.latest();
  if (snapshot === null) {
    out.line('  not verified: no snapshot was made');
    return null;
  }
  const excused = setup.readLog.excused;
  const verification = new BackupVerification(reader, snapshot, localSource(setup), {
    publishedNow: result.created,
    wasRead: setup.readLog.recordReads(),
    excused: (path) => excused.some((left) => left.equals(path) || isInside(path, left)),
  });
  const report: VerifyReport = { snapshot, checked: verification.checked, differences: [], differenceCount: 0 };
  for await (const difference of verification.differences()) {
    if (report.differenceCount++ < LISTED) report.differences.push(differenceJson(difference));
    out.warn(`verify: ${differenceLine(difference)}`);
  }
  const c = report.checked;
  const read = `${c.filesReread} files re-read, ${c.objectsReread} stored objects re-hashed (${formatBytes(c.bytesRead)})`;
  if (report.differenceCount > 0) out.warn(`verify: snapshot ${snapshot} differs from the source in ${report.differenceCount} place(s); ${c.entries} entries compared, ${read}`);
  else out.line(`  verified: ${c.entries} entries, ${read}; snapshot ${snapshot} matches the source`);
  return report;
}

function differenceLine(difference: BackupDifference): string {
  if (difference.side === 'repository') return problemLine(difference.problem);
  return `${difference.path.length === 0 ? '.' : displayName(difference.path)}: ${difference.detail}`;
}

function differenceJson(difference: BackupDifference): object {
  if (difference.side === 'repository') return { side: 'repository', ...problemJson(difference.problem) };
  return { side: 'source', ...jsonName(difference.path.length === 0 ? Buffer.from('.') : difference.path), detail: difference.detail };
}

/** The source as the backup walked it (the repository left out, special files skipped), owners mapped as the backup maps them. */
function localSource(setup: VerifySetup): SourceSide {
  const repository = lstatSync(setup.repositoryPath, { bigint: true });
  const leftOut = new Map<string, string>();
  const accounts = new Accounts();
  const rule: OwnerRule = { asRoot: process.getuid?.() === 0, numericIds: setup.numericIds, ownUid: process.getuid!(), ownGid: process.getgid!() };
  const linkGroups = new LinkGroups<Buffer>();
  const toEntry = (scanned: ScanEntry): SourceEntry => {
    const uid = Number(scanned.stat.uid);
    const gid = Number(scanned.stat.gid);
    // Named as the source side names them to the repository side, and mapped back as it maps them.
    const owner = ownerFor({ uid, gid, user: accounts.userName(uid), group: accounts.groupName(gid) }, rule, accounts);
    return {
      path: scanned.path,
      type: scanned.type,
      size: scanned.type === 'file' ? Number(scanned.stat.size) : 0,
      mtimeNs: scanned.stat.mtimeNs,
      mode: Number(scanned.stat.mode & 0o7777n),
      ...owner,
      target: scanned.target ?? null,
      ...linkOf(scanned),
    };
  };
  // As the source side groups them: a file with more links than one names its group's first path.
  const linkOf = (scanned: ScanEntry): { link?: Buffer } => {
    const first = scanned.type === 'file' ? linkGroups.place(scanned.stat, scanned.path) : undefined;
    return first === undefined || first === 'first' ? {} : { link: first };
  };
  async function* entries(): AsyncGenerator<SourceEntry> {
    const walking = walk(setup.sourceRoot, {
      prune: (stat) => stat.dev === repository.dev && stat.ino === repository.ino,
      onSkip: (skipped) => skipped.kind === 'unreadable' && leftOut.set(skipped.path.toString('latin1'), skipped.reason),
    });
    for await (const scanned of walking) yield toEntry(scanned);
  }
  const root = Buffer.from(setup.sourceRoot + '/');
  return {
    entries: entries(),
    hash: (path, onBytes) => sha256OfFile(Buffer.concat([root, path]), onBytes),
    // A path the walk could not examine, or one inside a directory it could not list.
    leftOut: (path) => {
      for (let at: Buffer | null = path; at !== null; at = parentPath(at)) {
        const why = leftOut.get(at.toString('latin1'));
        if (why !== undefined) return why;
      }
      return undefined;
    },
  };
}
