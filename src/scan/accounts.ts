// User and group names from /etc/passwd and /etc/group: the source names its
// owners, the destination maps names back to its own ids (as Link-Backup and
// rsync do without --numeric-ids).
import { readFileSync } from 'node:fs';

interface Table {
  byId: Map<number, string>;
  byName: Map<string, number>;
}

function load(path: string): Table {
  const table: Table = { byId: new Map(), byName: new Map() };
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return table;
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    const n = Number(id);
    if (!name || !Number.isInteger(n)) continue;
    if (!table.byId.has(n)) table.byId.set(n, name);
    if (!table.byName.has(name)) table.byName.set(name, n);
  }
  return table;
}

export class Accounts {
  private users: Table | null = null;
  private groups: Table | null = null;

  private get userTable(): Table {
    return (this.users ??= load('/etc/passwd'));
  }

  private get groupTable(): Table {
    return (this.groups ??= load('/etc/group'));
  }

  userName(uid: number): string | undefined {
    return this.userTable.byId.get(uid);
  }

  groupName(gid: number): string | undefined {
    return this.groupTable.byId.get(gid);
  }

  /** The local uid for a source owner: by name when known here, else the number as is. */
  uidFor(uid: number, name: string | undefined): number {
    return (name !== undefined ? this.userTable.byName.get(name) : undefined) ?? uid;
  }

  gidFor(gid: number, name: string | undefined): number {
    return (name !== undefined ? this.groupTable.byName.get(name) : undefined) ?? gid;
  }
}

/** Name -> id pairs of /etc/passwd or /etc/group, the first id of each name, as Accounts maps names. */
export function accountTable(path: string): [string, number][] {
  return [...load(path).byName];
}

/** Another machine's names (its accountTable()), mapped as Accounts maps this machine's. */
export class AccountTables {
  private readonly users: Map<string, number>;
  private readonly groups: Map<string, number>;

  constructor(users: [string, number][], groups: [string, number][]) {
    this.users = new Map(users);
    this.groups = new Map(groups);
  }

  uidFor(uid: number, name: string | undefined): number {
    return (name !== undefined ? this.users.get(name) : undefined) ?? uid;
  }

  gidFor(gid: number, name: string | undefined): number {
    return (name !== undefined ? this.groups.get(name) : undefined) ?? gid;
  }
}
