// The descriptor that read a file's prefix signature serves its comparisons
// too, so a candidate is opened once rather than once per read. Bounded, so
// thousands of files sharing a size cannot run the process out of descriptors.
// Closing is left to the thread pool: closing the last descriptor of a
// duplicate just replaced frees its blocks, which takes a while.
import { close, openSync } from 'node:fs';

function closeLater(fd: number): void {
  close(fd, () => {}); // a read-only descriptor: nothing to lose if closing fails
}

export class OpenFiles<Key> {
  private readonly kept = new Map<Key, number>();

  constructor(private readonly limit = 256) {}

  /** The file open for reading: the descriptor kept from before, or a new one. Throws what open(2) throws. */
  acquire(key: Key, path: Buffer): number {
    const fd = this.kept.get(key);
    if (fd !== undefined) return fd;
    const opened = openSync(path, 'r');
    if (this.kept.size < this.limit) this.kept.set(key, opened);
    return opened;
  }

  /** Done with it for now: closed unless kept for later. */
  release(key: Key, fd: number): void {
    if (this.kept.get(key) !== fd) closeLater(fd);
  }

  /** Done with it for good. */
  forget(key: Key): void {
    const fd = this.kept.get(key);
    if (fd === undefined) return;
    this.kept.delete(key);
    closeLater(fd);
  }

  closeAll(): void {
    for (const fd of this.kept.values()) closeLater(fd);
    this.kept.clear();
  }
}
