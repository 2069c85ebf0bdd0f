// What the repository side says while a backup runs, as the user sees it:
// warnings on stderr (kept under --quiet), -v's entries on stdout.
import type { RunEvent } from '../../protocol/messages.js';
import { displayName } from '../names.js';
import type { Output } from '../output.js';

export function showEvent(out: Output): (event: RunEvent) => void {
  return (event) => {
    switch (event.kind) {
      case 'warning':
        return out.warn(`warning: ${event.text}`);
      case 'entry':
        return out.line(`${event.how.padEnd(6)} ${displayName(event.path)}${event.type === 'dir' ? '/' : ''}`);
      case 'skip':
        return out.line(`${'skip'.padEnd(6)} ${displayName(event.path)}: ${event.reason}`);
      case 'missing':
        return; // only --showfiles asks for these, and lists them itself (seeding.ts)
    }
  };
}
