// Replacing a file changes its directory's mtime (and ctime, which nothing can
// set back); users expect a deduplicated tree to look untouched. Each
// directory's atime and mtime are taken before the first change in it and put
// back once nothing more can change in it: when the last of its files that
// might be linked has been dealt with, or at the end of the run. Node's utimes
// keeps only microseconds, so an mtime that needs its nanoseconds is set by
// touch(1) from a shell (names as raw bytes on its input). A touch costs a
// process, about a millisecond, and most directories need one: four shells,
// started at the first change, take touches as directories are done with,
// while files are still being read (starting a process from this one costs
// more than a touch).
import { spawn, type ChildProcess } from 'node:child_process';
import { lstatSync, lutimesSync } from 'node:fs';

interface Times {
  path: Buffer;
  atimeNs: bigint;
  mtimeNs: bigint;
}

/** Shells running touch at once. */
const SHELLS = 4;

function directoryOf(file: Buffer): Buffer {
  return file.subarray(0, Math.max(file.lastIndexOf(0x2f), 1));
}

export class DirectoryTimes {
  private readonly before = new Map<string, Times>();
  /** Files that may yet be replaced, per directory. */
  private readonly pending = new Map<string, number>();
  private readonly touch = new TouchShells();

  /** Call, before any change, for each file that may be replaced. */
  mayChange(file: Buffer): void {
    const key = directoryOf(file).toString('latin1');
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
  }

  /** Call once `file` (announced by mayChange) will not be replaced any more: its directory's times go back when it was the last. */
  settled(file: Buffer): void {
    const key = directoryOf(file).toString('latin1');
    const left = (this.pending.get(key) ?? 1) - 1;
    if (left > 0) {
      this.pending.set(key, left);
      return;
    }
    this.pending.delete(key);
    const times = this.before.get(key);
    if (!times) return;
    this.before.delete(key);
    this.putBack(times);
  }

  /** Call before anything in the directory holding `file` changes. */
  beforeChangeBeside(file: Buffer): void {
    const directory = directoryOf(file);
    const key = directory.toString('latin1');
    if (this.before.has(key)) return;
    const stat = lstatSync(directory, { bigint: true, throwIfNoEntry: false });
    if (stat) this.before.set(key, { path: directory, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs });
    this.touch.start();
  }

  /** Puts every changed directory's times back (a directory gone since is left alone); resolves once all are. */
  async restore(): Promise<void> {
    for (const times of this.before.values()) this.putBack(times);
    this.before.clear();
    await this.touch.finish();
  }

  /** Sets the times to the microsecond, and queues a touch for an mtime that needs its nanoseconds; should touch fail, they stay right to the microsecond. */
  private putBack({ path, atimeNs, mtimeNs }: Times): void {
    try {
      lutimesSync(path, seconds(atimeNs), seconds(mtimeNs));
      if (lstatSync(path, { bigint: true }).mtimeNs === mtimeNs || mtimeNs < 0n) return;
    } catch {
      return;
    }
    const when = `@${mtimeNs / 1_000_000_000n}.${(mtimeNs % 1_000_000_000n).toString().padStart(9, '0')}`;
    this.touch.run(Buffer.from(`touch -c -h -m -d ${when} -- '${path.toString('latin1').replace(/'/g, "'\\''")}'\n`, 'latin1'));
  }
}

function seconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

/** Shells that run the commands given them, one after another each. */
class TouchShells {
  private shells: ChildProcess[] = [];
  private exited: Promise<void>[] = [];
  private next = 0;

  start(): void {
    while (this.shells.length < SHELLS) {
      const shell = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'ignore', 'ignore'] });
      this.exited.push(new Promise((resolve) => shell.on('close', () => resolve()).on('error', () => resolve())));
      shell.stdin!.on('error', () => {}); // a shell that could not start: the times stay right to the microsecond
      this.shells.push(shell);
    }
  }

  run(command: Buffer): void {
    this.start();
    this.shells[this.next++ % SHELLS]!.stdin!.write(command);
  }

  /** Resolves once every command given has run. */
  async finish(): Promise<void> {
    for (const shell of this.shells) shell.stdin!.end();
    await Promise.all(this.exited);
    this.shells = [];
    this.exited = [];
  }
}
