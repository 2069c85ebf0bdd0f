// What a read command's body prints through. Locally that is the CLI's Output
// (src/cli/output.ts); in the agent's read role, an output that sends each line,
// warning and JSON value as a message, which lb prints on the user's machine.
// A method may return a promise: over the wire it resolves once the peer is
// keeping up, so a body that awaits each call streams in flat memory.

export interface Report {
  /** --json: the body gives its result as JSON (json, or item by item); lines are remarks (stderr). */
  readonly asJson: boolean;
  /** A line of the text output. */
  line(text: string): void | Promise<void>;
  /** What the user must see even under --json (printed `lb: TEXT` on stderr). */
  warn(text: string): void | Promise<void>;
  /** The one JSON value of --json. */
  json(value: unknown): void | Promise<void>;
  /** Or --json's array, one element at a time, closed by endItems(). */
  item(value: unknown): void | Promise<void>;
  endItems(): void | Promise<void>;
}
