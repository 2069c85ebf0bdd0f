// `lb verify REPO [--read-data [PERCENT | N/T]]`: checks the repository's
// structure (repo/verify.ts) and prints each problem on one line as it is found,
// then a closing line with what was checked; exit status 5 when it found damage.
import { InvalidArgumentError, type Command } from 'commander';
import { describeSubset, parseObjectSubset, SubsetError, type ObjectSubset } from '../../repo/object-subset.js';
import { Verification, type Checked, type Link, type Problem } from '../../repo/verify.js';
import { displayName, jsonName } from '../names.js';
import { EXIT, Output, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { openToRead } from './read-repository.js';

interface VerifyOptions extends OutputOptions {
  /** true for every object; a subset otherwise; undefined without --read-data. */
  readData?: ObjectSubset | true;
}

export function registerVerify(program: Command): void {
  const command = program
    .command('verify')
    .description('check that every snapshot matches its manifest and links to sound objects; exit status 5 when damage is found')
    .configureOutput(oneLineErrors('usage: lb verify [options] REPOSITORY [--read-data [PERCENT | N/T]] (lb verify --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path')
    .option('--read-data [subset]', 're-hash every object, or a share of them at random (10%), or part N of T (1/7)', readDataSubset);
  addOutputOptions(command, {}).action((repository: string, opts: VerifyOptions) => {
    process.exitCode = verifyCommand(repository, opts);
  });
}

/** Commander takes the word after --read-data as its value: a repository there gets a hint. */
function readDataSubset(text: string): ObjectSubset {
  try {
    return parseObjectSubset(text);
  } catch (error) {
    if (!(error instanceof SubsetError)) throw error;
    const hint = /^[0-9./%]+$/.test(text) ? '' : '; to re-read every object, put --read-data after the repository';
    throw new InvalidArgumentError(error.message + hint);
  }
}

function verifyCommand(repositoryArg: string, opts: VerifyOptions): number {
  const out = new Output(opts);
  const reader = openToRead(repositoryArg, 'verify');
  const subset = opts.readData === undefined ? null : opts.readData === true ? ({ kind: 'all' } as const) : opts.readData;
  const verification = new Verification(reader, { readData: subset });
  // Kept only for --json; text lines go out as the problems are found.
  const problems: object[] = [];
  let found = 0;
  for (const problem of verification.problems()) {
    found++;
    if (out.asJson) problems.push(problemJson(problem));
    else out.line(problemLine(problem));
  }
  if (out.asJson) out.json({ problems, checked: verification.checked, status: found > 0 ? 'damaged' : 'ok' });
  else out.line(closingLine(verification.checked, subset, found));
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
