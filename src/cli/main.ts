// The lb command line: a commander program made of the commands in commands/,
// one file each, and the run. Printing and exit statuses: output.ts.
import { Command } from 'commander';
import { placeCommandWord } from './command-word.js';
import { registerBackup } from './commands/backup.js';
import { registerDedupe } from './commands/dedupe.js';
import { registerDiff } from './commands/diff.js';
import { registerDu } from './commands/du.js';
import { registerList } from './commands/list.js';
import { registerLog } from './commands/log.js';
import { registerLs } from './commands/ls.js';
import { registerPrune } from './commands/prune.js';
import { registerRestore } from './commands/restore.js';
import { registerVerify } from './commands/verify.js';
import { jsonRequested, leaveQuietlyOnClosedPipe, oneLineErrors, reportFailure } from './output.js';

leaveQuietlyOnClosedPipe();

const program = new Command('lb')
  .description('Dated, hard-linked snapshots: moved, renamed and duplicated files cost no new storage and no new transfer.')
  .version('0.1.0')
  .exitOverride()
  .configureOutput(oneLineErrors('lb --help lists the commands'));

// In the order `lb --help` lists them; backup, the default, first.
registerBackup(program);
registerList(program);
registerLs(program);
registerLog(program);
registerDiff(program);
registerDu(program);
registerVerify(program);
registerRestore(program);
registerPrune(program);
registerDedupe(program);

program.usage(usageLines(program, 'backup'));

/** How each command is typed, for `lb --help`: the default one first, its name optional. */
function usageLines(program: Command, defaultCommand: string): string {
  return program.commands
    .map((command, i) => {
      const name = command.name() === defaultCommand ? `[${command.name()}]` : command.name();
      const operands = command.registeredArguments.map((a) => (a.required ? a.name().toUpperCase() : `[${a.name().toUpperCase()}]`));
      return `${i === 0 ? '' : '       lb '}${[name, ...operands].join(' ')} [options]`;
    })
    .join('\n');
}

const args = process.argv.slice(2);
try {
  await program.parseAsync(placeCommandWord(program, args, 'backup'), { from: 'user' });
} catch (error) {
  process.exitCode = reportFailure(error, jsonRequested(args));
}
