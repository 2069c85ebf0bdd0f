// lb finds ~/.ssh where OpenSSH does: in the home the password database gives
// the user, whatever $HOME says (sudo, cron and scripts set it to other places).
// A user made for the test, whose passwd home holds the key and known_hosts,
// runs lb with HOME pointing at an empty directory, against a real sshd.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LB, tempDir } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => sshd?.stop());

/** A new unprivileged user whose passwd home is `home`; removed (not its files) by the returned function. */
function makeUser(home: string): { uid: number; gid: number; remove: () => void } {
  const name = `lbtest${process.pid % 100_000}${Math.floor(Math.random() * 1000)}`;
  const made = spawnSync('useradd', ['-M', '-U', '-d', home, '-s', '/bin/sh', name], { encoding: 'utf8' });
  expect(made.status, `useradd: ${made.stderr}`).toBe(0);
  const [uid, gid] = ['-u', '-g'].map((flag) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout));
  return { uid: uid!, gid: gid!, remove: () => void spawnSync('userdel', [name]) };
}

describe('the ssh home', () => {
  it('is the password database home, not $HOME', () => {
    const work = tempDir();
    chmodSync(work, 0o755);
    const home = join(work, 'passwd-home');
    const elsewhere = join(work, 'elsewhere'); // $HOME: no .ssh there
    mkdirSync(join(home, '.ssh'), { recursive: true });
    mkdirSync(elsewhere);
    cpSync(join(sshd.home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'id_ed25519'));
    writeFileSync(join(home, '.ssh', 'known_hosts'), `[127.0.0.1]:${sshd.port} ${sshd.hostKey}\n`);
    mkdirSync(join(work, 'src'));
    writeFileSync(join(work, 'src', 'f'), 'found');
    const user = makeUser(home);
    try {
      for (const path of [home, join(home, '.ssh'), join(home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'known_hosts'), elsewhere]) chownSync(path, user.uid, user.gid);
      const env: Record<string, string | undefined> = { ...process.env, HOME: elsewhere, XDG_STATE_HOME: join(elsewhere, 'state'), SSH_AUTH_SOCK: '' };
      delete env.LB_SSH_HOME;
      const r = spawnSync(process.execPath, [LB, join(work, 'src'), `root@127.0.0.1:${join(work, 'repo')}`, '--ssh-p', String(sshd.port)], {
        encoding: 'utf8',
        cwd: elsewhere,
        env,
        uid: user.uid,
        gid: user.gid,
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(readFileSync(join(work, 'repo', 'latest', 'tree', 'f'), 'utf8')).toBe('found');
    } finally {
      user.remove();
    }
  });
});
