// On a real terminal (tmux, which keeps the screen as a terminal shows it), what
// lb prints during a run stays on the screen: a warning goes above the live
// progress line, and neither that line nor the final summary covers it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, tempDir } from './helpers.js';

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

let sessions = 0;

/** Runs argv on a fresh 200x50 terminal, waits for it to end, and returns what the screen shows then (and showed on the way, every 100 ms). */
async function onTerminal(argv: string[]): Promise<{ screen: string; status: number; seen: string[] }> {
  const socket = `lb-test-${process.pid}-${sessions++}`;
  const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const started = tmux('new-session', '-d', '-x', '200', '-y', '50', `${argv.map(quote).join(' ')}; echo "exit status $?"; exec sleep 600`);
  expect(started.status, `tmux: ${started.stderr}${started.error ?? ''}`).toBe(0);
  try {
    const seen: string[] = [];
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      const screen = tmux('capture-pane', '-p').stdout;
      const ended = /^exit status (\d+)$/m.exec(screen);
      if (ended) return { screen, status: Number(ended[1]), seen };
      seen.push(screen);
    }
    throw new Error('the command did not end within 60 s');
  } finally {
    tmux('kill-server');
  }
}

/** lb under strace, with every open of `failing` failing with EIO: a warning in the middle of the run. */
function lbWithUnreadable(failing: string, args: string[]): string[] {
  return ['strace', '-f', '-qq', '-o', '/dev/null', '-P', failing, '-e', 'trace=openat', '-e', 'inject=openat:error=EIO', process.execPath, LB, ...args];
}

/** A tree of 400 pairs of identical files, larger ones first: they keep `lb dedupe` comparing for a while. */
function treeOfPairs(root: string): (name: string, content: Buffer) => void {
  const write = (name: string, content: Buffer) => {
    writeFileSync(join(root, name), content);
    utimesSync(join(root, name), 1_500_000_000, 1_500_000_000);
  };
  mkdirSync(root);
  for (let i = 0; i < 400; i++) {
    const content = randomBytes(100_000 + i);
    write(`pair-${i}-a`, content);
    write(`pair-${i}-b`, content);
  }
  return write;
}

/** The screen's lines, from the first one matching `first` to the last one that is not empty. */
function linesFrom(screen: string, first: RegExp): string[] {
  const lines = screen.split('\n').map((line) => line.trimEnd());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.slice(lines.findIndex((line) => first.test(line)));
}

describe('on a terminal', () => {
  it('keeps a backup warning on the screen, above the summary', async () => {
    const work = tempDir();
    const src = join(work, 'src');
    mkdirSync(src);
    for (let i = 0; i < 300; i++) writeFileSync(join(src, `f${i}`), randomBytes(20_000));
    writeFileSync(join(src, 'z-unreadable'), 'data');
    const { screen, status } = await onTerminal(lbWithUnreadable(join(src, 'z-unreadable'), [src, join(work, 'repo'), '--catalog', join(work, 'c.sqlite')]));
    expect(status, screen).toBe(3);
    const shown = linesFrom(screen, /z-unreadable/);
    expect(shown[0], screen).toMatch(/^lb: warning: .*z-unreadable.*cannot read: EIO/);
    expect(shown.find((line) => line.startsWith('lb: snapshot ')), screen).toBeDefined();
    expect(shown.at(-1)).toBe('exit status 3');
    expect(screen).not.toMatch(/ETA/); // the progress line is gone
  });

  it('keeps a dedupe warning on the screen, above the summary', async () => {
    const work = tempDir();
    const root = join(work, 'tree');
    // Larger files are compared first: the pairs keep lb busy, with its progress line shown, before it gets to `two`.
    const write = treeOfPairs(root);
    const content = randomBytes(50_000);
    for (const name of ['one', 'two', 'three']) write(name, content);
    const { screen, status } = await onTerminal(lbWithUnreadable(join(root, 'two'), ['dedupe', root, '--catalog', join(work, 'c.sqlite')]));
    expect(status, screen).toBe(3);
    const shown = linesFrom(screen, /two/);
    expect(shown[0], screen).toMatch(/^lb: warning: .*two.*cannot read: EIO/);
    expect(shown[1], screen).toMatch(/^lb dedupe: linked 401 file/);
    expect(shown.at(-1)).toBe('exit status 3');
    expect(screen).not.toMatch(/ back$/m); // the progress line is gone
  });

  it('keeps the dedupe progress line going while files are compared', async () => {
    const work = tempDir();
    const root = join(work, 'tree');
    treeOfPairs(root);
    // Every positioned read (the signatures and comparisons) takes a millisecond more: comparing lasts seconds.
    const strace = ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=pread64', '-e', 'inject=pread64:delay_exit=1000'];
    const { seen, status } = await onTerminal([...strace, process.execPath, LB, 'dedupe', root, '--catalog', join(work, 'c.sqlite')]);
    expect(status).toBe(0);
    const comparing = new Set(seen.map((screen) => screen.split('\n')[0]!).filter((line) => /^comparing \| 800 files, .* linked/.test(line)));
    expect(comparing.size, seen.map((screen) => screen.split('\n')[0]).join('\n')).toBeGreaterThan(1);
  });
});
