// What the wire tests share (wire-reference.test.ts, wire-moves.test.ts): a source
// with a bit of everything, a snapshot's manifest and stream digest, the rsync
// comparison of two snapshot trees, and a raw conversation with a fresh agent.
import { spawn } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameDecoder, FrameWriter } from '../src/protocol/frames.js';
import { PROTOCOL_VERSION, decodeAgentMessage } from '../src/protocol/messages.js';
import { ROOT, lb, rsync, type Summary } from './helpers.js';
import type { Sshd } from './sshd.js';

export const PAST = new Date('2024-03-01T00:00:00Z');

export function bytes(seed: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seed * 131 + i * 7 + (i >> 8)) & 0xff;
  return b;
}

export function file(path: string | Buffer, seed: number, size: number): void {
  writeFileSync(path, bytes(seed, size));
  utimesSync(path, PAST, PAST);
}

export const sizeOf = (i: number) => 1000 + ((i * 37) % 3000);

/** A source with a bit of everything: nested directories, a symlink, a source hard link, names that are not UTF-8 or hold a tab. */
export function makeSource(root: string, files = 40): void {
  for (const dir of ['albums/2023', 'albums/2024', 'docs', 'odd']) mkdirSync(join(root, dir), { recursive: true });
  for (let i = 0; i < files; i++) file(join(root, 'albums', i % 2 ? '2023' : '2024', `IMG_${String(i).padStart(4, '0')}.jpg`), i, sizeOf(i));
  file(join(root, 'docs', 'notes.txt'), 1000, 300);
  file(join(root, 'docs', 'linked-a'), 1001, 500);
  linkSync(join(root, 'docs', 'linked-a'), join(root, 'docs', 'linked-b'));
  symlinkSync('../docs/notes.txt', join(root, 'odd', 'to-notes'));
  writeFileSync(Buffer.from(join(root, 'odd', 'caf\xe9'), 'latin1'), 'latin-1 name');
  file(join(root, 'odd', 'tab\tname'), 1002, 10);
}

export function manifest(repo: string): Buffer {
  return readFileSync(join(repo, 'latest', 'manifest'));
}

/** rsync's itemized differences between two snapshot trees, content compared (nothing: the same tree). */
export function treeDifferences(a: string, b: string): string[] {
  const r = rsync(['-n', '-aHc', '--itemize-changes', '--delete', join(a, 'latest', 'tree') + '/', join(b, 'latest', 'tree') + '/']);
  return r.stdout.split('\n').filter((line) => line.trim() !== '');
}

export function streamOfLatest(repo: string): string {
  return (JSON.parse(readFileSync(join(repo, 'latest', 'summary'), 'utf8')) as { stream: string }).stream;
}

/** Sends raw (already encoded) messages to a fresh agent and returns what it answered. */
export async function talk(repository: string, stream: string | undefined, messages: object[]): Promise<{ replies: Record<string, unknown>[]; code: number }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'agent.cjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const writer = new FrameWriter(child.stdin);
  const decoder = new FrameDecoder();
  const replies: Record<string, unknown>[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) if (f.type === 1) replies.push(decodeAgentMessage(f.message) as unknown as Record<string, unknown>);
  });
  const hello = {
    t: 'hello',
    version: PROTOCOL_VERSION,
    repository,
    options: { snapshotName: '2030.01.01-00.00.00', always: true, numericIds: false, verbose: false, quickCheck: false, sourceLabel: 'evil', purpose: 'backup' },
    ...(stream ? { stream } : {}),
  };
  child.stdin.on('error', () => {}); // the agent may stop reading first
  for (const m of [hello, ...messages]) await writer.send(m);
  writer.end();
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  return { replies, code };
}

/** A push through the test's sshd, with its `--json` summary (wire figures included). */
export function pushOver(sshd: Sshd, source: string, repo: string, catalog: string): Summary & { wire: { sent: number; received: number } } {
  const r = lb(['backup', source, `root@127.0.0.1:${repo}`, '--json', '--catalog', catalog, '--ssh-p', String(sshd.port)], sshd.env);
  if (r.status !== 0) throw new Error(`lb exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
