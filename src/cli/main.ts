// The lb command line. The only code that prints.
import { Command } from 'commander';
import { backupCommand, type BackupCommandOptions } from './backup.js';
import { placeCommandWord } from './command-word.js';
import { dedupeCommand, type DedupeCommandOptions } from './dedupe.js';
import { addOutputOptions, jsonRequested, leaveQuietlyOnClosedPipe, oneLineErrors, reportFailure } from './output.js';

leaveQuietlyOnClosedPipe();

const args = process.argv.slice(2);

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

const program = new Command('lb')
  .description('Dated, hard-linked snapshots: moved, renamed and duplicated files cost no new storage and no new transfer.')
  .version('0.1.0')
  .exitOverride()
  .configureOutput(oneLineErrors('lb --help lists the commands'));

const backup = program
  .command('backup', { isDefault: true })
  .description('back up directory SOURCE into repository REPOSITORY (created if missing)')
  .configureOutput(oneLineErrors('usage: lb [options] SOURCE REPOSITORY (lb backup --help lists the options)'))
  .argument('<source>', 'directory to back up: a local path or [user@]host:path')
  .argument('<repository>', 'lb repository (created when missing or empty): a local path or [user@]host:path')
  .option('--always', 'make a snapshot even when nothing changed since the latest one')
  .option('--numeric-ids', 'keep numeric owner and group ids instead of mapping them by name (root only)')
  .option('--catalog <path>', 'hash cache database (default $XDG_STATE_HOME/lb/catalog.sqlite)');
addOutputOptions(backup, {
  verbose: 'list what happens to every entry',
  quiet: 'print only errors and warnings (nothing on a clean run)',
  progress: true,
})
  .option('--ssh-i <file>', 'SSH identity file (private key), tried before the configured ones')
  .option('--ssh-p <port>', 'SSH port, overriding ~/.ssh/config')
  .option('--ssh-C', 'compress the SSH connection')
  .option('--accept-new-host-key', 'record an unknown host key in ~/.ssh/known_hosts and go on (a changed key is still refused)')
  .option('--remote-node <path>', "the remote's node executable (default: node from PATH)")
  .option('--lock', 'accepted for Link-Backup compatibility; lb always locks the repository while it writes')
  .option('--minutes <n>', 'time budget: start no transfer that would end later; objects stored stay, a snapshot is made only when complete (exit status 4 otherwise)')
  .action(async (source: string, repository: string, opts: BackupCommandOptions) => {
    process.exitCode = await backupCommand(source, repository, opts);
  });

const dedupe = program
  .command('dedupe')
  .description('hard-link identical files inside DIR (one filesystem), replacing each duplicate atomically')
  .configureOutput(oneLineErrors('usage: lb dedupe [options] DIR (lb dedupe --help lists the options)'))
  .argument('<dir>', 'directory tree to deduplicate')
  .option('--content-only', "link equal contents even when mode, owner, group or mtime differ (the kept file's metadata wins)")
  .option('-n, --dry-run', 'change nothing: report the groups and the space linking would free')
  .option('--catalog <path>', 'hash cache database (default $XDG_STATE_HOME/lb/catalog.sqlite)');
addOutputOptions(dedupe, { verbose: 'list every link made', quiet: 'print only errors', progress: true }).action(
  async (dir: string, opts: DedupeCommandOptions) => {
    process.exitCode = await dedupeCommand(dir, opts);
  },
);

program.usage(usageLines(program, 'backup'));

try {
  await program.parseAsync(placeCommandWord(program, args), { from: 'user' });
} catch (error) {
  process.exitCode = reportFailure(error, jsonRequested(args));
}
