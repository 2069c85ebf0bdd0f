// Replacing a file changes its directory's mtime (and ctime, which nothing can
// set back); users expect a deduplicated tree to look untouched. Each
// directory's atime and mtime are taken before the first change in it and put
// back once the run's replacements are over. Node's utimes keeps only
// microseconds, so an mtime that needs its nanoseconds is set by touch(1), from
// a few shells at once (names as raw bytes on their input): a touch costs a
// process, about a millisecond, and most directories need one.
import { spawn } from 'node:child_process';
import { lstatSync, lutimesSync } from 'node:fs';

interface Times {
  path: Buffer;
  atimeNs: bigint;
  mtimeNs: bigint;
}

export class DirectoryTimes {
  private readonly before = new Map<string, Times>();

  /** Call before anything in the directory holding `file` changes. */
  beforeChangeBeside(file: Buffer): void {
    const directory = file.subarray(0, Math.max(file.lastIndexOf(0x2f), 1));
    const key = directory.toString('latin1');
    if (this.before.has(key)) return;
    const stat = lstatSync(directory, { bigint: true, throwIfNoEntry: false });
    if (stat) this.before.set(key, { path: directory, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs });
  }

  /** Puts every changed directory's times back (a directory gone since is left alone). */
  async restore(): Promise<void> {
    const exact = new Map<bigint, Buffer[]>();
    for (const { path, atimeNs, mtimeNs } of this.before.values()) {
      try {
        lutimesSync(path, seconds(atimeNs), seconds(mtimeNs));
        if (lstatSync(path, { bigint: true }).mtimeNs === mtimeNs || mtimeNs < 0n) continue;
      } catch {
        continue;
      }
      const same = exact.get(mtimeNs);
      if (same) same.push(path);
      else exact.set(mtimeNs, [path]);
    }
    this.before.clear();
    if (exact.size > 0) await touchExactly(exact);
  }
}

function seconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

/** Shells running touch at once. */
const SHELLS = 4;

/** One touch per distinct mtime (and 100 directories), from SHELLS shells; should touch fail, the times stay right to the microsecond. */
async function touchExactly(byMtime: Map<bigint, Buffer[]>): Promise<void> {
  const commands: Buffer[] = [];
  for (const [mtimeNs, paths] of byMtime) {
    const when = `@${mtimeNs / 1_000_000_000n}.${(mtimeNs % 1_000_000_000n).toString().padStart(9, '0')}`;
    for (let i = 0; i < paths.length; i += 100) {
      const words = paths.slice(i, i + 100).map((path) => Buffer.from(` '${path.toString('latin1').replace(/'/g, "'\\''")}'`, 'latin1'));
      commands.push(Buffer.concat([Buffer.from(`touch -c -h -m -d ${when} --`), ...words, Buffer.from('\n')]));
    }
  }
  const share = Math.ceil(commands.length / SHELLS);
  const shells: Promise<void>[] = [];
  for (let i = 0; i < commands.length; i += share) shells.push(runShell(Buffer.concat(commands.slice(i, i + share))));
  await Promise.all(shells);
}

function runShell(script: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const shell = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'ignore', 'ignore'] });
    shell.on('error', () => resolve());
    shell.on('close', () => resolve());
    shell.stdin.on('error', () => {}); // a shell that could not start: its error says so above
    shell.stdin.end(script);
  });
}
