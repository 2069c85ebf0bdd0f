// Imported first by the agent's entry point, for its side effect: libuv reads
// the size of its thread pool once, at the first call that needs it. The
// repository side's write pool (write-pool.ts) keeps up to a few threads busy;
// on a machine with two cores, libuv's default of four made every operation a
// contended hand-over (futex calls grew sixfold) and a first backup on tmpfs
// took 12% longer than with two. Not for lb itself: `lb dedupe` and `lb restore`
// wait on the disk, where four reads in flight beat two. A size the user sets stays.
import { availableParallelism } from 'node:os';

process.env.UV_THREADPOOL_SIZE ??= String(Math.min(4, Math.max(2, availableParallelism())));
