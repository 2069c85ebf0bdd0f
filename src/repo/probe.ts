// Can a filesystem hold a repository? Asked once, when a repository is created,
// by trying what lb does there: a snapshot tree is hard links into the object
// store, keeps symlinks, permission bits, owners (as root), mtimes to the
// microsecond, and names as raw bytes. FAT and exFAT (USB sticks), some SMB and
// FUSE mounts lack some of these; a run there would fail halfway, or keep less
// than it says.
import { chmodSync, chownSync, linkSync, lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toSeconds } from './object-files.js';

/** How a filesystem says it cannot do something, as opposed to being full, read-only or failing. */
const UNSUPPORTED = new Set(['EPERM', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL', 'EILSEQ', 'EMLINK']);

/** An odd second with a fraction down to the microsecond: any coarser filesystem loses part of it. */
const PROBE_MTIME_NS = 1_700_000_001_123_457_000n;
/** What utimes itself may lose (libuv keeps whole microseconds of a double), as the object store allows. */
const MTIME_TOLERANCE_NS = 2000n;

/** Names that are bytes, not text: Latin-1 "café", not valid UTF-8, as old archives hold. */
const NON_UTF8_NAME = Buffer.from('caf\xe9', 'latin1');

/**
 * What the filesystem under `scratch` (an empty directory lb made) lacks to hold a
 * repository, in words; empty when it has everything. Errors that are not about a
 * missing feature (a full disk, an I/O error) are thrown.
 */
export function missingFeatures(scratch: string, asRoot: boolean): string[] {
  const missing: string[] = [];
  /** `works` says true, false (then `lack` is missing), or in its own words what is missing. */
  const check = (lack: string, works: () => boolean | string) => {
    try {
      const verdict = works();
      if (verdict !== true) missing.push(verdict === false ? lack : verdict);
    } catch (error) {
      if (!UNSUPPORTED.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
      missing.push(lack);
    }
  };
  const file = join(scratch, 'file');
  writeFileSync(file, 'probe', { mode: 0o600 });

  check('no hard links', () => {
    linkSync(file, join(scratch, 'link'));
    const [a, b] = [lstatSync(file), lstatSync(join(scratch, 'link'))];
    // Link counts are how garbage collection tells an object no snapshot uses.
    return a.ino === b.ino && a.nlink === 2 && b.nlink === 2;
  });
  check('no symlinks', () => {
    symlinkSync('target', join(scratch, 'symlink'));
    return lstatSync(join(scratch, 'symlink')).isSymbolicLink() && readlinkSync(join(scratch, 'symlink')) === 'target';
  });
  check('permission bits cannot be set', () =>
    [0o640, 0o751].every((mode) => {
      chmodSync(file, mode);
      return (lstatSync(file).mode & 0o7777) === mode;
    }),
  );
  if (asRoot) {
    // Two owners, so that a mount forcing every file to one (vfat's uid=) cannot pass by chance.
    check('owners cannot be set', () =>
      [
        [1, 2],
        [2, 1],
      ].every(([uid, gid]) => {
        chownSync(file, uid!, gid!);
        const stat = lstatSync(file);
        return stat.uid === uid && stat.gid === gid;
      }),
    );
  }
  check('mtimes cannot be set', () => {
    utimesSync(file, toSeconds(PROBE_MTIME_NS), toSeconds(PROBE_MTIME_NS));
    const kept = lstatSync(file, { bigint: true }).mtimeNs;
    const drift = kept - PROBE_MTIME_NS;
    return (drift > -MTIME_TOLERANCE_NS && drift < MTIME_TOLERANCE_NS) || `mtimes kept only to ${resolutionOf(kept)}`;
  });
  check('no file names that are not UTF-8', () => {
    const path = Buffer.concat([Buffer.from(scratch + '/'), NON_UTF8_NAME]);
    writeFileSync(path, 'bytes');
    const listed = readdirSync(scratch, { encoding: 'buffer' }).some((name) => name.equals(NON_UTF8_NAME));
    return listed && readFileSync(path, 'latin1') === 'bytes';
  });
  check('file names that differ only in case are one file', () => {
    writeFileSync(join(scratch, 'Case'), '');
    try {
      lstatSync(join(scratch, 'CASE'));
      return false;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw error;
    }
  });
  return missing;
}

/** The coarsest unit a kept mtime is a whole multiple of: what the filesystem rounds to. */
function resolutionOf(ns: bigint): string {
  const units: [bigint, string][] = [
    [2_000_000_000n, '2 seconds'],
    [1_000_000_000n, 'the second'],
    [100_000_000n, '100 ms'],
    [10_000_000n, '10 ms'],
    [1_000_000n, 'the millisecond'],
    [100_000n, '100 µs'],
    [10_000n, '10 µs'],
  ];
  return units.find(([unit]) => ns % unit === 0n)?.[1] ?? 'less than the microsecond';
}

/** The type of the filesystem holding `path` ("ext4", "vfat", "fuse.fusefat"), from the mount table; null where there is none. */
export function filesystemType(path: string): string | null {
  let real: string;
  let table: string;
  try {
    real = realpathSync(path);
    table = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  let best: { at: string; type: string } | null = null;
  for (const line of table.split('\n')) {
    // id parent major:minor root MOUNT-POINT options [optional fields] - TYPE source super-options
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (fields.length < 5 || separator < 0) continue;
    const at = fields[4]!.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    const inside = at === '/' || real === at || real.startsWith(at + '/');
    // The last matching line wins among equals: a later mount hides an earlier one at the same place.
    if (inside && (!best || at.length >= best.at.length)) best = { at, type: fields[separator + 1] ?? '?' };
  }
  return best?.type ?? null;
}
