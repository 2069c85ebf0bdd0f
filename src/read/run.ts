// The read commands' bodies by name: what `lb list|ls|log|diff|du|verify` run on a
// repository opened here, whether the command line is here (cli/commands/) or on
// another machine (the agent's read role, agent/read.ts).
import type { ReadCommand } from '../protocol/read.js';
import type { RepositoryReader } from '../repo/reader.js';
import { diffBody } from './diff.js';
import { duBody } from './du.js';
import { listBody } from './list.js';
import { logBody } from './log.js';
import { lsBody } from './ls.js';
import type { Report } from './report.js';
import { verifyBody } from './verify.js';

/** Runs the command, printing through `out`; its exit status, or a UsageError / other error thrown. */
export function runRead(reader: RepositoryReader, read: ReadCommand, out: Report): Promise<number> {
  switch (read.command) {
    case 'list':
      return listBody(reader, read, out);
    case 'ls':
      return lsBody(reader, read, out);
    case 'log':
      return logBody(reader, read, out);
    case 'diff':
      return diffBody(reader, read, out);
    case 'du':
      return duBody(reader, read, out);
    case 'verify':
      return verifyBody(reader, read, out);
  }
}
