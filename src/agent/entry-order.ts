// Entries from a source must come in canonical order, each once, each below a
// directory already received, the source root first: so nothing written can
// pass through a symlink, and a record merges with the previous manifest in one pass.
import { comparePaths, isInside, parentPath } from '../diff/order.js';
import { ProtocolError } from '../protocol/frames.js';
import type { Entry } from '../protocol/messages.js';

export class EntryOrder {
  private lastPath: Buffer | null = null;
  /** Directories received whose subtrees may still receive entries. */
  private readonly dirStack: Buffer[] = [];

  /** Throws a ProtocolError for an entry out of place. */
  check(entry: Entry): void {
    const path = entry.path;
    if (this.lastPath === null) {
      if (path.length !== 0 || entry.type !== 'dir') throw new ProtocolError('the first entry must be the source root directory');
    } else {
      if (comparePaths(this.lastPath, path) >= 0) throw new ProtocolError('peer sent entries out of order or twice');
      while (this.dirStack.length > 0 && !isInside(path, this.dirStack[this.dirStack.length - 1]!)) this.dirStack.pop();
      const parent = parentPath(path)!;
      const top = this.dirStack[this.dirStack.length - 1];
      if (top === undefined || !top.equals(parent)) {
        throw new ProtocolError(`peer sent ${JSON.stringify(path.toString())} whose parent is not a directory it sent`);
      }
    }
    if (entry.type === 'dir') this.dirStack.push(path);
    this.lastPath = path;
  }
}
