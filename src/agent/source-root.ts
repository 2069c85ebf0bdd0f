// The source root must be a directory. The source side checks it before its
// hello, so that a pull from a mistyped path ends before the repository side
// creates, locks or writes anything.
import { statSync } from 'node:fs';
import type { SourceProblem } from '../protocol/messages.js';

/** Missing or not a directory; null otherwise (a root that cannot be read is for the listing check to say why). */
export function sourceRootProblem(root: string): SourceProblem | null {
  try {
    return statSync(root).isDirectory() ? null : 'not-a-directory';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : null;
  }
}

/** What lb says about a source it cannot back up, whichever side found out. */
export function sourceProblemLine(source: string, problem: SourceProblem): string {
  const what = problem === 'missing' ? 'does not exist' : 'is not a directory';
  return `source ${source} ${what}; give the directory to back up`;
}

export class SourceRootError extends Error {
  constructor(
    readonly problem: SourceProblem,
    source: string,
  ) {
    super(sourceProblemLine(source, problem));
  }
}
