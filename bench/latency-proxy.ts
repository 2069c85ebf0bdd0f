// A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time in each
// direction (keeping order) and counts the bytes that cross it: a long link, and
// a wire meter that sees the same bytes for every tool.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface LatencyProxy {
  port: number;
  /** Bytes from the client to the server and back, over every connection so far. */
  bytes: { up: number; down: number };
  close(): Promise<void>;
}

/** Forward `from` to `to`, each chunk `delayMs` late. One queue and one timer per direction keep the order. */
function pipeDelayed(from: Socket, to: Socket, delayMs: number, count: (n: number) => void): void {
  const queue: { due: number; chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | null = null;
  const pump = () => {
    timer = null;
    const now = performance.now();
    while (queue.length && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      if (chunk) to.write(chunk);
      else to.end();
    }
    if (queue.length) timer = setTimeout(pump, queue[0]!.due - now);
  };
  const enqueue = (chunk: Buffer | null) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    timer ??= setTimeout(pump, delayMs);
  };
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (delayMs === 0) to.write(chunk);
    else enqueue(chunk);
  });
  from.on('end', () => (delayMs === 0 ? to.end() : enqueue(null)));
  from.on('error', () => to.destroy());
}

export function startLatencyProxy(targetPort: number, delayMs: number): Promise<LatencyProxy> {
  const bytes = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    pipeDelayed(client, upstream, delayMs, (n) => (bytes.up += n));
    pipeDelayed(upstream, client, delayMs, (n) => (bytes.down += n));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as { port: number }).port,
        bytes,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
