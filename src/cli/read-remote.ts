// A read command on a repository over SSH: lb's agent runs the command's body
// there (agent/read.ts) and sends what it prints; this prints it here. A peer's
// words are never printed as they come: text loses its control characters (no
// terminal escapes from a remote), JSON is parsed and written anew, the exit
// status is one lb documents, and a peer that breaks the protocol is refused in one line.
import { ProtocolError, FrameDecoder, FrameWriter, FRAME_JSON } from '../protocol/frames.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { decodeReadReply, encodeReadRequest, type ReadCommand } from '../protocol/read.js';
import type { Location } from '../transport/address.js';
import { openSession, startRemoteAgent, type SshOptions } from '../transport/ssh.js';
import { refusedRemote } from './backup/outcome.js';
import { UsageError, type Output } from './output.js';

/** The largest --json value taken from a peer (its parts are joined before it is parsed). */
const MAX_JSON_TEXT = 256 * 1024 * 1024;

/** Control characters (C0, DEL, C1: ESC and CSI among them) as `\xNN`, as names.ts shows them in names. */
export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

class RemoteEnded extends Error {}

export async function readRemote(where: Extract<Location, { kind: 'remote' }>, read: ReadCommand, out: Output, ssh: SshOptions): Promise<number> {
  const session = await openSession(where.host, where.user, ssh);
  try {
    const agent = await startRemoteAgent(session, ssh, []);
    try {
      const request = new FrameWriter(agent.output, false);
      request.post(encodeReadRequest({ t: 'read', version: PROTOCOL_VERSION, repository: where.path, json: out.asJson, read }));
      request.flush();
      return await printReplies(agent.input, out);
    } catch (error) {
      if (session.lost) throw new Error(session.lost);
      if (error instanceof ProtocolError) throw new Error(refusedRemote(session, error.message, 'its output was cut short there'));
      if (error instanceof RemoteEnded) {
        // The agent's own words, if any (a request it could not take, say), as text from a peer is shown.
        const said = agent.stderr().trim().split('\n')[0]?.replace(/^lb agent: /, '');
        throw new Error(said ? `the lb agent on ${where.host}: ${printable(said)}` : error.message);
      }
      throw error;
    } finally {
      agent.kill();
    }
  } finally {
    session.close();
  }
}

/** Prints the agent's replies until its last; returns the exit status it reports, or throws what it says went wrong. */
async function printReplies(input: AsyncIterable<Buffer>, out: Output): Promise<number> {
  const decoder = new FrameDecoder();
  let json = '';
  for await (const chunk of input) {
    for (const frame of decoder.push(chunk)) {
      if (frame.type !== FRAME_JSON) throw new ProtocolError('the agent sent file data');
      const reply = decodeReadReply(frame.message);
      switch (reply.t) {
        case 'line':
          out.line(printable(reply.text));
          break;
        case 'warn':
          out.warn(printable(reply.text));
          break;
        case 'json':
          if (json.length + reply.text.length > MAX_JSON_TEXT) throw new ProtocolError('the agent sent a JSON value larger than lb takes');
          json += reply.text;
          if (reply.last) {
            out.json(parsed(json));
            json = '';
          }
          break;
        case 'item':
          out.item(reply.value); // already parsed from the frame; written anew
          break;
        case 'items-end':
          out.endItems();
          break;
        case 'end':
          return reply.exit;
        case 'error': {
          const message = printable(reply.message);
          throw reply.usage ? new UsageError(message) : new Error(message);
        }
      }
    }
  }
  throw new RemoteEnded('the lb agent on the remote ended without saying how the command went');
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError('the agent sent a malformed JSON value');
  }
}
