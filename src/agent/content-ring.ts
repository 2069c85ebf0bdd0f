// Memory for the content of small files between their hash and their sending, on
// the source side: one region reused in turn rather than a new buffer per file.
// A buffer per file lived long enough (hashed, then waiting for the data request,
// then for the socket) to be promoted, so only a full garbage collection freed it:
// a first backup paid one for about every 64 MB it read.

interface Lease {
  start: number;
  end: number;
  given: boolean;
}

export class ContentRing {
  private memory: Buffer | null = null;
  /** Leases in the order they were taken; space is reused once the oldest ones are given back. */
  private readonly leases: Lease[] = [];
  private readonly byStart = new Map<number, Lease>();
  private head = 0;

  constructor(private readonly capacity: number) {}

  /** `size` bytes of the ring, or null when it has no room for them now (the caller allocates its own). */
  take(size: number): Buffer | null {
    if (size === 0 || size > this.capacity) return null;
    this.memory ??= Buffer.allocUnsafeSlow(this.capacity);
    const start = this.placeFor(size);
    if (start === null) return null;
    const lease = { start, end: start + size, given: false };
    this.leases.push(lease);
    this.byStart.set(start, lease);
    this.head = lease.end;
    return this.memory.subarray(start, lease.end);
  }

  /** Where `size` contiguous bytes fit after the newest lease without reaching the oldest, or null. */
  private placeFor(size: number): number | null {
    if (this.leases.length === 0) return 0;
    const tail = this.leases[0]!.start;
    if (this.head > tail) {
      // In use: [tail, head). Free: the end of the ring, else its start.
      if (this.head + size <= this.capacity) return this.head;
      return size <= tail ? 0 : null;
    }
    // Wrapped, in use: [tail, end) and [0, head). Free: [head, tail).
    return this.head + size <= tail ? this.head : null;
  }

  /** True when `buffer` came from take(). */
  owns(buffer: Buffer): boolean {
    return this.memory !== null && buffer.buffer === this.memory.buffer && this.byStart.has(buffer.byteOffset - this.memory.byteOffset);
  }

  /** Give back a buffer from take(): its bytes may be handed out again once every older lease is back too. */
  give(buffer: Buffer): void {
    if (!this.owns(buffer)) return;
    const start = buffer.byteOffset - this.memory!.byteOffset;
    this.byStart.get(start)!.given = true;
    this.byStart.delete(start);
    while (this.leases.length > 0 && this.leases[0]!.given) this.leases.shift();
    if (this.leases.length === 0) this.head = 0;
  }
}
