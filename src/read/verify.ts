// The body of `lb verify REPO [--read-data [PERCENT | N/T]]`: checks the
// repository's structure (repo/verify.ts), objects re-read where the repository
// is, and prints each problem on one line as it is found, then a closing line
// with what was checked; exit status 5 when it found damage.
import { displayName, jsonName } from '../cli/names.js';
import { EXIT } from '../cli/status.js';
import { describeSubset, type ObjectSubset } from '../repo/object-subset.js';
import type { RepositoryReader } from '../repo/reader.js';
import { Verification, type Checked, type Link, type Problem } from '../repo/verify.js';
import type { Report } from './report.js';

export interface VerifyArgs {
  /** Which objects to re-hash (--read-data); null to read none. */
  readData: ObjectSubset | null;
}

export async function verifyBody(reader: RepositoryReader, args: VerifyArgs, out: Report): Promise<number> {
  const subset = args.readData;
  const verification = new Verification(reader, { readData: subset });
  // Kept only for --json; text lines go out as the problems are found.
  const problems: object[] = [];
  let found = 0;
  for (const problem of verification.problems()) {
    found++;
    if (out.asJson) problems.push(problemJson(problem));
    else await out.line(problemLine(problem));
  }
  if (out.asJson) await out.json({ problems, checked: verification.checked, status: found > 0 ? 'damaged' : 'ok' });
  else await out.line(closingLine(verification.checked, subset, found));
  return found > 0 ? EXIT.damaged : EXIT.ok;
}

function shownPath(path: Buffer): string {
  return path.length === 0 ? '.' : displayName(path);
}

function linkText(link: Link): string {
  return `${link.snapshot} ${shownPath(link.path)}`;
}

/** `SNAPSHOT PATH: what is wrong`, `object .lb/objects/…: what is wrong`, or `SNAPSHOT: …` / the detail alone. */
export function problemLine(problem: Problem): string {
  let where = '';
  if (problem.object !== undefined) where = `object ${problem.object}: `;
  else if (problem.snapshot !== undefined) where = problem.path === undefined ? `${problem.snapshot}: ` : `${problem.snapshot} ${shownPath(problem.path)}: `;
  let line = where + problem.detail;
  if (problem.links !== undefined) {
    line += problem.links.length === 0 ? '; no snapshot links to it' : `; linked from ${problem.links.map(linkText).join(', ')}`;
  }
  return line;
}

export function problemJson(problem: Problem): object {
  return {
    kind: problem.kind,
    ...(problem.snapshot !== undefined ? { snapshot: problem.snapshot } : {}),
    ...(problem.path !== undefined ? jsonName(problem.path) : {}),
    ...(problem.object !== undefined ? { object: problem.object } : {}),
    detail: problem.detail,
    ...(problem.links !== undefined ? { links: problem.links.map((link) => ({ snapshot: link.snapshot, ...jsonName(link.path) })) } : {}),
  };
}

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}

function closingLine(checked: Checked, subset: ObjectSubset | null, found: number): string {
  const read = subset === null ? 'no object data read' : `${plural(checked.objectsRead, 'object')} read (${describeSubset(subset)}), ${plural(checked.bytesRead, 'byte')}`;
  const verdict = found === 0 ? 'no problems' : plural(found, 'problem');
  return `checked ${plural(checked.snapshots, 'snapshot')}, ${plural(checked.entries, 'entry', 'entries')}, ${plural(checked.objects, 'object')}; ${read}: ${verdict}`;
}
