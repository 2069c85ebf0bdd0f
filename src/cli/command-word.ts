// Which word of the command line names the command. `lb SOURCE REPOSITORY`
// names none (backup is the default), so a mistyped or unknown command would be
// taken for a source that does not exist: a word that can only be meant as a
// command (a name, with no `/` or `:`, of no file here) is refused as one. A command named after options (`lb --json dedupe
// DIR`) is moved first, where commander looks for it.
import { lstatSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from './output.js';

/**
 * The command line as commander should see it; throws a UsageError for an unknown command. After `--`
 * every word is an operand of the default command, even one named like a command (commander would
 * still take that for the command, so the default command is named first).
 */
export function placeCommandWord(program: Command, args: string[], defaultCommand: string): string[] {
  const at = firstOperand(program, args);
  if (at === 'after --') return [defaultCommand, ...args];
  if (at === null) return args;
  const word = args[at]!;
  if (word === 'help' || program.commands.some((command) => command.name() === word || command.aliases().includes(word))) {
    return [word, ...args.slice(0, at), ...args.slice(at + 1)];
  }
  if (/^[a-z][a-z0-9-]*$/i.test(word) && !exists(word)) {
    const commands = program.commands.map((command) => command.name()).join(', ');
    throw new UsageError(`unknown command '${word}' (and no file or directory of that name here); the commands are ${commands} (lb --help says more)`);
  }
  return args;
}

/** Index of the first word that is neither an option nor an option's value; null when there is none. */
function firstOperand(program: Command, args: string[]): number | 'after --' | null {
  const options = program.commands.flatMap((command) => command.options);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return 'after --'; // what follows are operands: a source named like a command, say
    if (arg === '-' || !arg.startsWith('-')) return i;
    if (arg.includes('=')) continue; // --catalog=PATH
    const option = options.find((o) => o.long === arg || o.short === arg);
    if (option && (option.required || (option.optional && !args[i + 1]?.startsWith('-')))) i++; // its value
  }
  return null;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
