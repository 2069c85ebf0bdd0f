// Opening the catalog for a run. It is a cache, so nothing about it may stop a
// run, and nothing may quietly make a run trust less than it should: a catalog
// that cannot be used is moved aside and a fresh one made, and that is said once.
import { Catalog } from './catalog.js';
import { fileIdentity, isUnusableFile, moveAside } from './damage.js';

const WITHOUT = 'going on without it: every file is read';

/**
 * The catalog at `path`, or undefined when none can be had (then every file is
 * read). Each problem is told to `warn` in one line, once; so is a failure later
 * in the run, after which the catalog switches itself off.
 */
export function openCatalog(path: string, warn: (line: string) => void): Catalog | undefined {
  const found = fileIdentity(path);
  let problem: Error;
  try {
    return new Catalog(path, warn);
  } catch (error) {
    problem = error as Error;
  }
  if (!found || !isUnusableFile(problem)) {
    warn(`catalog ${path} cannot be used (${problem.message}); ${WITHOUT}`);
    return undefined;
  }
  let aside: string | null;
  try {
    aside = moveAside(path, found);
  } catch (error) {
    warn(`catalog ${path} is unusable (${problem.message}) and cannot be moved aside (${(error as Error).message}); ${WITHOUT}`);
    return undefined;
  }
  const said = aside ? `catalog ${path} was unusable (${problem.message}); moved it aside to ${aside}` : null;
  try {
    const fresh = new Catalog(path, warn);
    // Not moved: another run moved it a moment ago, and said so.
    if (said) warn(`${said} and started a fresh one`);
    return fresh;
  } catch (error) {
    warn(`${said ?? `catalog ${path} was unusable (${problem.message})`}, and a fresh one cannot be made (${(error as Error).message}); ${WITHOUT}`);
    return undefined;
  }
}
