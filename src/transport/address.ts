// Where a path lives: `[user@]host:path` as scp and Link-Backup read it (a colon
// before any slash), `[v6addr]:path` for IPv6, anything else local (`./a:b` too).

export type Location =
  | { kind: 'local'; path: string }
  | { kind: 'remote'; user?: string; host: string; path: string };

export function parseLocation(arg: string): Location {
  const bracketed = /^(?:([^@/]+)@)?\[([^\]/]+)\]:(.*)$/.exec(arg);
  if (bracketed) return remote(bracketed[1], bracketed[2]!, bracketed[3]!);
  const colon = arg.indexOf(':');
  const slash = arg.indexOf('/');
  if (colon <= 0 || (slash >= 0 && slash < colon)) return { kind: 'local', path: arg };
  const userHost = arg.slice(0, colon);
  const at = userHost.lastIndexOf('@');
  return remote(at >= 0 ? userHost.slice(0, at) : undefined, at >= 0 ? userHost.slice(at + 1) : userHost, arg.slice(colon + 1));
}

function remote(user: string | undefined, host: string, path: string): Location {
  if (!host) throw new Error('missing host name before the colon');
  if (user === '') throw new Error('empty user name before @');
  // An empty path means the remote home directory, as with scp.
  return { kind: 'remote', user, host, path: path || '.' };
}

export function describeLocation(l: Location): string {
  return l.kind === 'local' ? l.path : `${l.user ? l.user + '@' : ''}${l.host}:${l.path}`;
}
