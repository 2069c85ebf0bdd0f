// Replacing a file changes its directory's mtime (and ctime, which nothing can
// set back); users expect a deduplicated tree to look untouched. Each
// directory's atime and mtime are taken before the first change in it and put
// back once the run's replacements are over. Node's utimes keeps only
// microseconds, so an mtime that needs its nanoseconds is set by touch(1), one
// shell for all of them (names as raw bytes on its input).
import { spawnSync } from 'node:child_process';
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
  restore(): void {
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
    if (exact.size > 0) touchExactly(exact);
  }
}

function seconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

/** One touch per distinct mtime (and 100 directories), all from one shell; should touch fail, the times stay right to the microsecond. */
function touchExactly(byMtime: Map<bigint, Buffer[]>): void {
  const script: Buffer[] = [];
  for (const [mtimeNs, paths] of byMtime) {
    const when = `@${mtimeNs / 1_000_000_000n}.${(mtimeNs % 1_000_000_000n).toString().padStart(9, '0')}`;
    for (let i = 0; i < paths.length; i += 100) {
      script.push(Buffer.from(`touch -c -h -m -d ${when} --`));
      for (const path of paths.slice(i, i + 100)) script.push(Buffer.from(` '${path.toString('latin1').replace(/'/g, "'\\''")}'`, 'latin1'));
      script.push(Buffer.from('\n'));
    }
  }
  spawnSync('/bin/sh', ['-s'], { input: Buffer.concat(script), stdio: ['pipe', 'ignore', 'ignore'] });
}
