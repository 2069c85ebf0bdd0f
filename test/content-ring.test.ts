// ContentRing hands out regions of one buffer in turn: no two live leases may
// overlap, given-back space must be reused, and a lease too big for the room left
// is refused (the caller then allocates its own) rather than overlapping another.
import { describe, expect, it } from 'vitest';
import { ContentRing } from '../src/agent/content-ring.js';
import { generator } from './helpers.js';

const span = (b: Buffer) => [b.byteOffset, b.byteOffset + b.length] as const;

describe('ContentRing', () => {
  it('never lets two live leases overlap, and reuses what was given back, in any order', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const random = generator(seed);
      const capacity = 1000 + Math.floor(random() * 5000);
      const ring = new ContentRing(capacity);
      const live: Buffer[] = [];
      let taken = 0;
      for (let step = 0; step < 2000; step++) {
        if (live.length > 0 && random() < 0.45) {
          // Mostly the oldest (sent in order), sometimes any (dropped once settled).
          const i = random() < 0.7 ? 0 : Math.floor(random() * live.length);
          ring.give(live.splice(i, 1)[0]!);
          continue;
        }
        const lease = ring.take(1 + Math.floor(random() * capacity * 0.3));
        if (!lease) continue;
        taken++;
        // Written through: a later overlap would show as a changed byte.
        lease.fill(step & 0xff);
        for (const other of live) {
          const [a0, a1] = span(lease);
          const [b0, b1] = span(other);
          expect(a1 <= b0 || b1 <= a0, `seed ${seed}, step ${step}: leases overlap`).toBe(true);
        }
        live.push(lease);
      }
      // Far more bytes were handed out than the ring holds: space was reused.
      expect(taken, `seed ${seed}`).toBeGreaterThan(100);
      for (const b of live.splice(0)) ring.give(b);
      expect(ring.take(capacity), `seed ${seed}: all given back, the whole ring is free`).not.toBeNull();
    }
  });

  it('refuses what does not fit and what is not its own', () => {
    const ring = new ContentRing(100);
    expect(ring.take(101)).toBeNull();
    expect(ring.take(0)).toBeNull();
    const a = ring.take(60)!;
    expect(ring.take(50)).toBeNull(); // 40 left at the end, nothing at the start
    const b = ring.take(40)!;
    ring.give(a);
    expect(ring.take(61)).toBeNull();
    const c = ring.take(60)!;
    expect(span(c)).toEqual([a.byteOffset, a.byteOffset + 60]);
    ring.give(Buffer.alloc(10)); // not from the ring: ignored
    expect(ring.owns(b)).toBe(true);
    ring.give(b);
    ring.give(b); // twice: ignored
    expect(ring.owns(b)).toBe(false);
  });
});
