// Bad command lines: each is refused with its exit status and one line on stderr
// that says what to do, before anything is written anywhere (not even the catalog).
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { LB, lb, mountOrSkip, rsyncDifferences, snapshots, tempDir, umount } from './helpers.js';

/** Every path under `root` with its type, size and mtime: any write, even one undone, shows as a difference. */
function listing(root: string): string[] {
  const lines: string[] = [];
  const visit = (path: string) => {
    const stat = lstatSync(path);
    const type = stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? `link->${readlinkSync(path)}` : 'file';
    lines.push(`${relative(root, path) || '.'} ${type} ${stat.size} ${stat.mtimeMs}`);
    if (stat.isDirectory()) for (const name of readdirSync(path).sort()) visit(join(path, name));
  };
  visit(root);
  return lines;
}

/** A work directory with a source holding one file; the default catalog would land inside it too. */
function workWithSource(): { work: string; src: string; env: Record<string, string> } {
  const work = tempDir();
  const src = join(work, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'f'), 'data');
  return { work, src, env: { XDG_STATE_HOME: join(work, 'state') } };
}

/** Runs lb and checks it refused: the status, exactly one `lb: ` line on stderr, and the work directory untouched. */
function expectRefused(work: string, env: Record<string, string>, args: string[], status: number, message: RegExp): void {
  const before = listing(work);
  const r = lb(args, env);
  expect(r.stderr).toMatch(/^lb: [^\n]+\n$/);
  expect(r.stderr).toMatch(message);
  expect(r.status).toBe(status);
  expect(r.stdout).toBe('');
  expect(listing(work)).toEqual(before);
}

describe('lb refuses a bad command line before writing anything', () => {
  it('refuses a missing source', () => {
    const { work, env } = workWithSource();
    expectRefused(work, env, ['backup', join(work, 'nope'), join(work, 'repo')], 2, /^lb: source .*nope does not exist; give the directory to back up\n$/);
  });

  it('refuses a source that is a file', () => {
    const { work, src, env } = workWithSource();
    expectRefused(work, env, ['backup', join(src, 'f'), join(work, 'repo')], 2, /^lb: source .*f is not a directory; give the directory to back up\n$/);
  });

  it('refuses a repository inside the source, also when either is named through a symlink', () => {
    const { work, src, env } = workWithSource();
    symlinkSync(src, join(work, 'alias'));
    const inside = /lies inside the source .*; choose a repository outside it\n$/;
    expectRefused(work, env, ['backup', src, join(src, 'repo')], 2, inside);
    expectRefused(work, env, ['backup', src, src], 2, inside);
    expectRefused(work, env, ['backup', join(work, 'alias'), join(src, 'repo')], 2, inside);
    expectRefused(work, env, ['backup', src, join(work, 'alias', 'repo')], 2, inside);
    expectRefused(work, env, ['backup', src, join(work, 'alias', 'deeper', 'repo')], 2, inside);
  });

  it('refuses a non-empty directory that is not an lb repository', () => {
    const { work, src, env } = workWithSource();
    mkdirSync(join(work, 'documents'));
    writeFileSync(join(work, 'documents', 'letter'), 'keep me');
    expectRefused(work, env, ['backup', src, join(work, 'documents')], 2, /is not empty and not an lb repository.*; give a new or empty directory, or an existing lb repository\n$/);
  });

  it('refuses a repository that is a file', () => {
    const { work, src, env } = workWithSource();
    writeFileSync(join(work, 'notes'), 'keep me');
    expectRefused(work, env, ['backup', src, join(work, 'notes')], 2, /notes exists and is not a directory; give a new or empty directory/);
  });

  it('refuses unknown options in one line, with a suggestion for a near miss', () => {
    const { work, src, env } = workWithSource();
    const repo = join(work, 'repo');
    expectRefused(work, env, ['backup', '--frobnicate', src, repo], 2, /^lb: unknown option '--frobnicate'; usage: lb \[options\] SOURCE REPOSITORY/);
    // commander puts "(Did you mean --json?)" on a line of its own; lb keeps to one.
    expectRefused(work, env, [src, repo, '--jsn'], 2, /^lb: unknown option '--jsn' \(Did you mean --json\?\); usage: /);
  });

  it('refuses a missing or an extra argument, and an option without its value', () => {
    const { work, src, env } = workWithSource();
    const repo = join(work, 'repo');
    expectRefused(work, env, ['backup', src], 2, /^lb: missing required argument 'repository'; usage: lb \[options\] SOURCE REPOSITORY/);
    expectRefused(work, env, [], 2, /^lb: missing required argument 'source'; usage: /);
    expectRefused(work, env, [src, repo, join(work, 'third')], 2, /^lb: too many arguments .*; usage: /);
    expectRefused(work, env, [src, repo, '--catalog'], 2, /^lb: option '--catalog <path>' argument missing; usage: /);
  });

  it('refuses an --ssh-p that is not a port number', () => {
    const { work, src, env } = workWithSource();
    for (const port of ['notaport', '0', '65536', '1e3', '']) {
      expectRefused(work, env, [src, join(work, 'repo'), '--ssh-p', port], 2, /^lb: --ssh-p wants a port number from 1 to 65535, not /);
    }
  });

  it('refuses a remote source and a remote repository together', () => {
    const { work, env } = workWithSource();
    expectRefused(work, env, ['backup', 'alpha:/photos', 'beta:/snapshots'], 2, /^lb: source and repository cannot both be remote; run lb on one of the two hosts\n$/);
  });
});

/** Runs `body` with a 1 MiB read-only tmpfs at `mnt`; skips, saying why, only when mount itself fails. */
function withReadOnlyTmpfs(ctx: TestContext, mnt: string, body: () => void): void {
  mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs'], mnt);
  try {
    body();
  } finally {
    umount(mnt);
  }
}

describe('lb refuses an unwritable repository before writing anything', () => {
  const readOnly = /^lb: the repository is on a read-only filesystem; remount it read-write and run again \(at .*mnt\)/;

  it('refuses an empty repository directory on a read-only filesystem, with exit status 1', (ctx) => {
    const { work, src, env } = workWithSource();
    const mnt = join(work, 'mnt');
    withReadOnlyTmpfs(ctx, mnt, () => expectRefused(work, env, ['backup', src, mnt], 1, readOnly));
  });

  it('refuses a repository to be made in a read-only directory; deeper, its missing parent is refused first', (ctx) => {
    const { work, src, env } = workWithSource();
    const mnt = join(work, 'mnt');
    withReadOnlyTmpfs(ctx, mnt, () => {
      expectRefused(work, env, ['backup', src, join(mnt, 'repo')], 1, readOnly);
      // Only a repository's own directory is ever made (repository-creation.test.ts).
      expectRefused(work, env, ['backup', src, join(mnt, 'not', 'yet', 'repo')], 2, /^lb: cannot create repository .*mnt\/not\/yet\/repo: its parent .*mnt\/not\/yet does not exist; create it first\n$/);
    });
  });
});

describe('Link-Backup options', () => {
  it('accepts --lock, which changes nothing: lb always locks', () => {
    const { work, src, env } = workWithSource();
    const repo = join(work, 'repo');
    const r = lb(['--lock', src, repo], env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(snapshots(repo)).toHaveLength(1);
    expect(rsyncDifferences(src, join(repo, 'latest', 'tree'))).toEqual([]);
    writeFileSync(join(src, 'g'), 'more');
    expect(lb(['backup', src, repo, '--lock', '--quiet'], env)).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(snapshots(repo)).toHaveLength(2);
    expect(lb(['backup', '--help']).stdout).toMatch(/--lock +accepted\s+for\s+Link-Backup\s+compatibility;\s+lb\s+always\s+locks/);
  });
});

/** lb run from `cwd`, where relative paths and command-like words are looked up. */
function lbIn(cwd: string, args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [LB, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('commands', () => {
  const unknown = (word: string) => new RegExp(`^lb: unknown command '${word}' \\(and no file or directory of that name here\\); the commands are backup, list, ls, log, diff, du, verify, restore, prune, dedupe \\(lb --help says more\\)\n$`);

  it('refuses an unknown command in one line listing the commands, rather than taking it for a source', () => {
    const { work, env } = workWithSource();
    expectRefused(work, env, ['frobnicate', join(work, 'repo')], 2, unknown('frobnicate'));
    expectRefused(work, env, ['--catalog', join(work, 'c.sqlite'), '-q', 'snapshots', join(work, 'repo')], 2, unknown('snapshots'));
    expectRefused(work, env, ['frobnicate'], 2, unknown('frobnicate'));
    // Not a name a command could have, explicitly a backup, or after `--`: a source, which does not exist.
    expectRefused(work, env, ['2019', join(work, 'repo')], 2, /^lb: source 2019 does not exist; give the directory to back up\n$/);
    expectRefused(work, env, ['backup', 'list', join(work, 'repo')], 2, /^lb: source list does not exist; give the directory to back up\n$/);
    expectRefused(work, env, ['--', 'list', join(work, 'repo')], 2, /^lb: source list does not exist/);
  });

  it('backs up an existing directory named like a command, and takes host:path for a remote source', () => {
    const { work, env } = workWithSource();
    mkdirSync(join(work, 'photos'));
    writeFileSync(join(work, 'photos', 'f'), 'data');
    const r = lbIn(work, ['photos', 'repo', '-q'], env);
    expect(r, r.stderr).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(rsyncDifferences(join(work, 'photos'), join(work, 'repo', 'latest', 'tree'))).toEqual([]);
    // Nothing listens on port 1: a connection is tried, so the word was taken for a host.
    const remote = lbIn(work, ['localhost:/list', 'repo2', '--ssh-p', '1'], env);
    expect(remote.stderr).toBe('lb: cannot connect to localhost port 1: connection refused\n');
    expect(remote.status).toBe(1);
  });

  it('takes a command named after options', () => {
    const { work, src, env } = workWithSource();
    const r = lb(['--json', '--catalog', join(work, 'c.sqlite'), 'dedupe', src], env);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).directory).toBe(src);
  });

  it('shows how each command is typed in lb --help, and each command\'s options in its own help', () => {
    const help = lb(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(
      /^Usage: lb \[backup\] SOURCE REPOSITORY \[options\]\n {7}lb list REPOSITORY \[options\]\n {7}lb ls REPOSITORY \[SNAPSHOT\] \[PATH\] \[options\]\n {7}lb log REPOSITORY \[PATH\] \[options\]\n {7}lb diff REPOSITORY \[OLD\] \[NEW\] \[options\]\n {7}lb du REPOSITORY \[options\]\n {7}lb verify REPOSITORY \[options\]\n {7}lb restore REPOSITORY \[SNAPSHOT\] TARGET \[options\]\n {7}lb prune REPOSITORY \[options\]\n {7}lb dedupe DIR \[options\]\n/,
    );
    for (const command of ['backup', 'list', 'ls', 'log', 'diff', 'du', 'verify', 'restore', 'prune', 'dedupe']) {
      const own = lb([command, '--help']);
      expect(own.status).toBe(0);
      expect(own.stdout).toMatch(new RegExp(`^Usage: lb ${command} \\[options\\]`));
      expect(own.stdout).toMatch(/--json/);
    }
  });
});

describe('--json on failure', () => {
  /** The one JSON object on stdout, and the same message as the one line on stderr. */
  function expectJsonError(args: string[], env: Record<string, string>, exit: number, message: RegExp): void {
    const r = lb(args, env);
    expect(r.status, r.stderr).toBe(exit);
    expect(r.stdout).toMatch(/^[^\n]+\n$/);
    const report = JSON.parse(r.stdout);
    expect(report).toEqual({ status: 'error', exit, error: expect.stringMatching(message) });
    expect(r.stderr).toBe(`lb: ${report.error}\n`);
  }

  it('prints one JSON object with the status, the exit status and the message', () => {
    const { work, src, env } = workWithSource();
    const repo = join(work, 'repo');
    expectJsonError(['backup', join(work, 'nope'), repo, '--json'], env, 2, /^source .*nope does not exist/);
    expectJsonError(['--json', src], env, 2, /^missing required argument 'repository'; usage: /);
    expectJsonError([src, repo, '--json', '--frobnicate'], env, 2, /^unknown option '--frobnicate'/);
    expectJsonError(['--json', 'frobnicate', repo], env, 2, /^unknown command 'frobnicate'/);
    expectJsonError(['list', repo, '--json'], env, 2, /does not exist, so it is no lb repository$/);
    expectJsonError(['dedupe', join(work, 'nope'), '--json'], env, 2, /nope does not exist$/);
    expectJsonError([src, 'localhost:/repo', '--json', '--ssh-p', '1'], env, 1, /^cannot connect to localhost port 1: connection refused$/);
    expectJsonError(['localhost:/src', repo, '--json', '--ssh-p', '1'], env, 1, /^cannot connect to localhost port 1: connection refused$/);
  });
});
