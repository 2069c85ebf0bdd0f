// Oracles and plumbing for the seeding tests (test/seeding.test.ts): Python
// hashing the source against the store's object names, rsync building the
// subset a file list must give, and the lstat of every path in a repository.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { LB, rsync, run, tempDir } from './helpers.js';

export function python(script: string, ...args: string[]): Buffer {
  const r = spawnSync('python3', ['-c', script, ...args]);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout;
}

/** The oracle: the source files whose SHA-256 names no object in the store, NUL-terminated, in canonical order. */
export function missingByOracle(src: string, repo: string): Buffer[] {
  const script = `
import hashlib, os, sys
src, repo = (os.fsencode(a) for a in sys.argv[1:3])
store = os.path.join(repo, b'.lb', b'objects')
held = {n[:64] for d in os.listdir(store) for n in os.listdir(os.path.join(store, d))}
missing = []
for top, dirs, files in os.walk(src):
    for name in files:
        path = os.path.join(top, name)
        if os.path.islink(path) or not os.path.isfile(path): continue
        with open(path, 'rb') as f: digest = hashlib.sha256(f.read()).hexdigest().encode()
        if digest not in held: missing.append(os.path.relpath(path, src))
missing.sort(key=lambda p: p.split(b'/'))
sys.stdout.buffer.write(b''.join(p + b'\\0' for p in missing))
`;
  return splitNul(python(script, src, repo));
}

/** Every object's name and the SHA-256 of its bytes, by Python. */
export function storeContents(repo: string): Record<string, string> {
  const script = `
import hashlib, json, os, sys
store = os.path.join(sys.argv[1], '.lb', 'objects')
out = {}
for d in os.listdir(store):
    for n in os.listdir(os.path.join(store, d)):
        with open(os.path.join(store, d, n), 'rb') as f: out[n] = hashlib.sha256(f.read()).hexdigest()
print(json.dumps(out))
`;
  return JSON.parse(python(script, repo).toString()) as Record<string, string>;
}

export function splitNul(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let end = bytes.indexOf(0); end >= 0; end = bytes.indexOf(0, start)) {
    out.push(bytes.subarray(start, end));
    start = end + 1;
  }
  expect(start).toBe(bytes.length); // every path NUL-terminated
  return out;
}

export function nulList(paths: Buffer[]): Buffer {
  return Buffer.concat(paths.flatMap((p) => [p, Buffer.from([0])]));
}

/** lb with its stdout as bytes (names need not be UTF-8), `input` on its stdin. */
export function lbBytes(args: string[], input?: Buffer): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [LB, ...args], { input });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function under(dir: string, name: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(dir + '/'), Buffer.from(name)]);
}

/** Every path under `root` (itself included) with the lstat fields any write would change. */
export function lstatState(root: string): Map<string, string> {
  const state = new Map<string, string>();
  const visit = (path: Buffer) => {
    const s = lstatSync(path, { bigint: true });
    state.set(path.toString('latin1'), [s.mtimeNs, s.ctimeNs, s.size, s.ino, s.mode, s.nlink].join(' '));
    if (s.isDirectory()) for (const name of readdirSync(path, { encoding: 'buffer' })) visit(Buffer.concat([path, Buffer.from('/'), name]));
  };
  visit(Buffer.from(root));
  return state;
}

/** The subset of `src` rsync copies for `list` (with `extra` options): what a --filelist snapshot must hold. */
export function rsyncSubset(src: string, list: Buffer[], extra: string[] = []): string {
  const work = tempDir();
  const listFile = join(work, 'list');
  writeFileSync(listFile, nulList(list));
  const expected = join(work, 'expected');
  rsync(['-a', ...extra, `--files-from=${listFile}`, '--from0', src + '/', expected + '/']);
  // rsync leaves the root's own times alone with --files-from; the snapshot's root keeps the source's.
  run('touch', ['-r', src, expected]);
  return expected;
}

/** Flip one byte of a file and give it back its mtime: only its ctime and content tell. */
export function flipByte(path: string): void {
  python(`
import os, sys
p = sys.argv[1]; st = os.lstat(p)
with open(p, 'r+b') as f:
    b = f.read(1); f.seek(0); f.write(bytes([b[0] ^ 1]))
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
`, path);
}

export function objectPath(repo: string, hash: string): string {
  return join(repo, '.lb', 'objects', hash.slice(0, 2), hash);
}

/** lb with every read of `slowFile` delayed by `delayMs` (strace), so a time budget runs out at a known point. */
export function slowLb(slowFile: string, delayMs: number, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const inject = ['-f', '-qq', '-o', '/dev/null', '-P', slowFile, '-e', 'trace=read', '-e', `inject=read:delay_exit=${delayMs * 1000}`];
  const child = spawn('strace', [...inject, process.execPath, LB, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr })));
}

/** lb with its standard input left open: whether it ended within `ms` on its own, then how. */
export async function lbWithStdinOpen(args: string[], ms: number): Promise<{ endedAlone: boolean; status: number; stderr: string }> {
  const child = spawn(process.execPath, [LB, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  let timer: NodeJS.Timeout | undefined;
  const endedAlone = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  child.stdin.end();
  return { endedAlone, status: await closed, stderr };
}
