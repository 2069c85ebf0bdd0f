// Host key checking against OpenSSH's known_hosts: plain, comma-separated and
// hashed (|1|salt|hash) host fields, [host]:port for other ports, negated
// patterns; marker lines (@revoked, @cert-authority) are honoured by refusing.
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type HostKeyVerdict = { kind: 'known' } | { kind: 'unknown' } | { kind: 'changed'; line: number } | { kind: 'revoked' };

/** How known_hosts names a host: the bare name on port 22, [name]:port otherwise. */
export function hostField(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

function wildcardToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function hostMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('!')) {
      if (wildcardToRegExp(pattern.slice(1)).test(name)) return false;
    } else if (wildcardToRegExp(pattern).test(name)) matched = true;
  }
  return matched;
}

/** The key type name inside an SSH public key blob. */
export function keyTypeOf(keyBlob: Buffer): string {
  const length = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

export function checkHostKey(knownHostsFiles: string[], host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const name = hostField(host, port);
  const type = keyTypeOf(keyBlob);
  let changedAt: number | null = null;
  for (const file of knownHostsFiles) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line || line.startsWith('#')) continue;
      let fields = line.split(/\s+/);
      let marker: string | null = null;
      if (fields[0]!.startsWith('@')) {
        marker = fields[0]!;
        fields = fields.slice(1);
      }
      const [hosts, keyType, keyData] = fields;
      if (!hosts || !keyType || !keyData || !hostMatches(hosts, name)) continue;
      const same = Buffer.from(keyData, 'base64').equals(keyBlob);
      if (marker === '@revoked' && same) return { kind: 'revoked' };
      if (marker !== null) continue; // certificate authorities: lb does not do host certificates
      if (same) return { kind: 'known' };
      if (keyType === type) changedAt ??= i + 1;
    }
  }
  return changedAt !== null ? { kind: 'changed', line: changedAt } : { kind: 'unknown' };
}

export function recordHostKey(file: string, host: string, port: number, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  appendFileSync(file, `${hostField(host, port)} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
}
