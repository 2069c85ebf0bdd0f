// An unprivileged account for the tests that log in over SSH or drop root: made
// in a test file's beforeAll, removed in its afterAll. Names carry the run's pid,
// so two runs on one machine never share, nor remove, each other's user.
import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type Sshd } from './sshd.js';

/** Makes the account `name` with home `home` (removing one an interrupted earlier run left); its uid and gid. */
export function createTestUser(name: string, home: string): { uid: number; gid: number } {
  removeTestUser(name, home);
  // '*': no password, yet not a locked account ('!'), which sshd would refuse even a key.
  const made = spawnSync('useradd', ['-m', '-d', home, '-s', '/bin/sh', '-p', '*', name], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`useradd failed: ${made.stderr}`);
  const id = (flag: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

export function removeTestUser(name: string, home: string): void {
  spawnSync('userdel', ['-r', name], { stdio: 'ignore' });
  rmSync(home, { recursive: true, force: true });
}

/** A real sshd on 127.0.0.1 that test users can log in to with the test key (sshd reads the key file with their rights). */
export async function sshdForTestUsers(): Promise<Sshd> {
  const sshd = await startSshd();
  chmodSync(sshd.dir, 0o711);
  chmodSync(join(sshd.dir, 'authorized_keys'), 0o644);
  return sshd;
}
