// How every lb command prints, and how it ends. A command (one file in
// commands/) registers itself on the program with `addOutputOptions` for the
// options it offers among --json, -v, -q and --no-progress; its action makes one
// `new Output(opts)` and prints only through it:
//   out.line(text)     summary and --verbose lines: stdout, stderr under --json, nothing under --quiet
//   out.warn(text)     what the user must see even under --quiet: stderr, prefixed `lb: `
//   out.json(value)    the one JSON value of --json, on stdout
//   out.showsProgress  whether to start a live progress line (a terminal, and no option against it)
// Lines printed while a progress line is shown go above it (live-line.ts).
// The action returns its exit status (EXIT) for `process.exitCode`; a failure is
// thrown instead, a UsageError for a bad command line, and `reportFailure` (main.ts)
// prints it as one line, with an error object on stdout under --json.
import { CommanderError, type Command, type OutputConfiguration } from 'commander';
import { Interrupted } from './interrupt.js';
import { printLine } from './live-line.js';

/** Exit statuses, documented in the README. */
export const EXIT = { ok: 0, error: 1, usage: 2, partial: 3, incomplete: 4, damaged: 5, differs: 6 } as const;

/** A bad command line: exit status 2. */
export class UsageError extends Error {}

/** The common options, as commander parses them. */
export interface OutputOptions {
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  /** false with --no-progress. */
  progress?: boolean;
}

export class Output {
  readonly asJson: boolean;
  readonly verbose: boolean;
  readonly quiet: boolean;
  /** On a terminal, unless an option asks for other output (cron runs never show it: stderr is no TTY there). */
  readonly showsProgress: boolean;

  constructor(opts: OutputOptions) {
    this.asJson = opts.json ?? false;
    this.verbose = opts.verbose ?? false;
    this.quiet = opts.quiet ?? false;
    this.showsProgress = opts.progress !== false && !this.quiet && !this.asJson && !this.verbose && process.stderr.isTTY === true;
  }

  readonly line = (text: string): void => {
    if (!this.quiet) printLine(this.asJson ? process.stderr : process.stdout, text);
  };

  readonly warn = (text: string): void => {
    printLine(process.stderr, `lb: ${text}`);
  };

  json(value: unknown): void {
    process.stdout.write(JSON.stringify(value) + '\n');
  }
}

/** What -v and -q mean for this command; `progress` when it has a live progress line. */
export interface OutputOptionHelp {
  verbose?: string;
  quiet?: string;
  progress?: boolean;
}

/** Adds --json, and the other common options the command has, in the order `--help` lists them. */
export function addOutputOptions(command: Command, help: OutputOptionHelp): Command {
  command.option('--json', 'print the summary as one JSON object on stdout');
  if (help.verbose) command.option('-v, --verbose', help.verbose);
  if (help.quiet) command.option('-q, --quiet', help.quiet);
  if (help.progress) command.option('--no-progress', 'no live progress display, even on a terminal');
  return command;
}

/** Commander's error as printed, for --json. */
let usageFailure: string | null = null;

function oneLine(text: string): string {
  return text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
}

/** Commander's errors in one line, as every lb error (it puts "(Did you mean …?)" on a second), followed by what to type. */
export function oneLineErrors(usage: string): OutputConfiguration {
  return {
    outputError: (text: string, write: (line: string) => void) => {
      usageFailure = `${oneLine(text)}; ${usage}`;
      write(`lb: ${usageFailure}\n`);
    },
  };
}

/** With --json, stdout carries one JSON object whatever happens: a failure too, bad command lines included. */
export function jsonRequested(args: string[]): boolean {
  return args.slice(0, args.includes('--') ? args.indexOf('--') : undefined).includes('--json');
}

/** Prints what ended lb (commander has printed its own errors already) and returns the exit status. */
export function reportFailure(error: unknown, json: boolean): number {
  let message: string;
  let exit: number;
  if (error instanceof CommanderError) {
    exit = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    message = usageFailure ?? oneLine(error.message);
  } else {
    message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`lb: ${message}\n`);
    exit = error instanceof UsageError ? EXIT.usage : error instanceof Interrupted ? error.exitStatus : EXIT.error;
  }
  if (json && exit !== EXIT.ok) process.stdout.write(JSON.stringify({ status: 'error', exit, error: message }) + '\n');
  return exit;
}

/**
 * A reader that goes away (`lb -v | head`) ends lb as SIGPIPE ends other tools: quietly.
 * Its agent then sees its input close and publishes nothing.
 */
export function leaveQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(128 + 13);
      throw error;
    });
  }
}
