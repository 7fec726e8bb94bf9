import type { PGlite } from '@electric-sql/pglite';
import { CompiledQuery, type QueryResult } from 'kysely';
import type pg from 'pg';

/**
 * `COPY (query) TO STDOUT (FORMAT binary)` as one Buffer: rows in Postgres's binary COPY format (each value in its
 * type's send form, length-prefixed), for readers that want bytes rather than strings — `verifyChain` reads the
 * log this way. The `pg` driver decodes every value of an ordinary result into a JS string, binary or not, and
 * Kysely has no COPY; so the request goes through Kysely as a stand-in statement, and the connection classes
 * `createDb()` gives its drivers recognise that statement and run the COPY instead, on the same connection — inside
 * the caller's transaction when there is one. A Kysely instance made elsewhere runs the stand-in as the plain
 * `select` it is, and `copyBinaryOut` answers null: the caller reads another way.
 */
const EMPTY = Buffer.alloc(0);
/**
 * The memory of `reuse` (from its start to the end of its ArrayBuffer) when it can hold `size` bytes and is memory
 * of its own: never a slice of Node's shared pool for small Buffers, which other Buffers use.
 */
function reusable(reuse: Buffer | undefined, size: number): Buffer | undefined {
  if (!reuse || reuse.buffer.byteLength <= Buffer.poolSize) return undefined;
  const room = reuse.buffer.byteLength - reuse.byteOffset;
  return room >= size ? Buffer.from(reuse.buffer, reuse.byteOffset, room) : undefined;
}

/** The stand-in statement: `select 1 as keyledger_copy_out_<n>`; `<n>` names the request in `requests`. */
const STAND_IN = 'select 1 as keyledger_copy_out_';
const requests = new Map<number, { query: string; reuse: Buffer | undefined }>();
let nextRequest = 1;

/** The column a recognised stand-in answers with: the COPY data. */
const COPY_COLUMN = 'keyledger_copy_data';

/**
 * A query object for `pg`'s `client.query()` (its "submittable" protocol) that reads the reply to a COPY TO STDOUT
 * straight off the socket. Through the driver every CopyData message (one per row) would be parsed into an object and
 * emitted as an event, which costs more than reading the row; instead, from submit until the CopyDone message, the
 * connection's socket data comes here, and only message headers are looked at. At CopyDone (or an ErrorResponse)
 * the driver's own handler is put back and given the rest — CommandComplete and ReadyForQuery, or the error — so
 * the query ends (or fails) through the driver as any other. pg-copy-streams does the same; this keeps the rows in
 * one buffer instead of a stream of small ones.
 */
class CopyOut {
  readonly done: Promise<Buffer>;
  private settle!: (error: Error | null) => void;
  private socket: NodeJS.EventEmitter | null = null;
  private driverOnData: ((chunk: Buffer) => void) | null = null;
  /** What was received so far, in `bytes` (reused from an earlier page when it is big enough). */
  private bytes: Buffer;
  private received = 0;
  /** The offset of the next message's header in `bytes`. */
  private next = 0;
  private page: Buffer | null = null;

  constructor(
    private readonly text: string,
    reuse: Buffer | undefined,
  ) {
    // A page's buffer is reused for a later page: allocating a fresh one each time is what drives V8 into full
    // garbage collections (external memory pressure), which cost more than reading the rows.
    this.bytes = reusable(reuse, 0) ?? EMPTY;
    this.done = new Promise<Buffer>((resolve, reject) => {
      this.settle = (error) => (error ? reject(error) : resolve(this.page ?? Buffer.alloc(0)));
    });
  }

  submit(connection: { stream: NodeJS.EventEmitter; query(text: string): void }): Error | undefined {
    const socket = connection.stream;
    const handlers = socket.listeners('data');
    if (handlers.length !== 1) return new Error('copyBinaryOut: the connection is not in a state to COPY');
    this.socket = socket;
    this.driverOnData = handlers[0] as (chunk: Buffer) => void;
    socket.removeListener('data', this.driverOnData);
    socket.on('data', this.onData);
    connection.query(this.text);
    return undefined;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.received + chunk.length > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, 2 * (this.received + chunk.length), 1 << 20));
      grown.set(this.bytes.subarray(0, this.received));
      this.bytes = grown;
    }
    this.bytes.set(chunk, this.received);
    this.received += chunk.length;
    const bytes = this.bytes;
    while (this.next + 5 <= this.received) {
      const code = bytes[this.next];
      const length = bytes.readUInt32BE(this.next + 1);
      // CopyDone ends the data; an ErrorResponse is the driver's to report.
      if (code === 0x63 || code === 0x45) {
        const ours = this.next;
        this.handBack(code === 0x63 ? ours + 1 + length : ours, ours);
        return;
      }
      this.next += 1 + length;
    }
  };

  /** Gives the socket back to the driver, with the bytes from `from` on, and keeps the messages before `ours`. */
  private handBack(from: number, ours: number): void {
    const socket = this.socket as NodeJS.EventEmitter;
    const driverOnData = this.driverOnData as (chunk: Buffer) => void;
    socket.removeListener('data', this.onData);
    socket.on('data', driverOnData);
    // The driver's part is copied out first: copyData compacts the COPY data in place, over it.
    const rest = from < this.received ? Buffer.from(this.bytes.subarray(from, this.received)) : null;
    this.page = copyData(this.bytes, ours);
    if (rest) driverOnData(rest);
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.settle(null);
  }

  handleError(error: Error): void {
    this.settle(error);
  }
}

/**
 * The payloads of the CopyData messages among the first `end` bytes of `messages` (a reply's messages), joined in
 * place: the COPY data itself. Other messages (CopyOutResponse, a notice) are skipped.
 */
function copyData(messages: Buffer, end: number): Buffer {
  let at = 0;
  let size = 0;
  while (at + 5 <= end) {
    const length = messages.readUInt32BE(at + 1);
    if (messages[at] === 0x64) {
      messages.copyWithin(size, at + 5, at + 1 + length);
      size += length - 4;
    }
    at += 1 + length;
  }
  return messages.subarray(0, size);
}

/** The request a stand-in statement names, if `text` is one. */
function standIn(text: unknown): { query: string; reuse: Buffer | undefined } | undefined {
  if (typeof text !== 'string' || !text.startsWith(STAND_IN)) return undefined;
  return requests.get(Number(text.slice(STAND_IN.length)));
}

/**
 * The `pg` client class of the pools `createDb()` makes (pg's `Client` option): a stand-in statement runs as a COPY
 * read straight off the socket (`CopyOut`); everything else is `pg.Client`'s.
 */
export function copyingClientClass(Base: typeof pg.Client): typeof pg.Client {
  class CopyingClient extends Base {
    override query(...args: unknown[]): never {
      const request = standIn(args[0]);
      if (!request) return (super.query as (...a: unknown[]) => never)(...args);
      const copy = new CopyOut(`copy (${request.query}) to stdout (format binary)`, request.reuse);
      (super.query as (q: unknown) => unknown)(copy);
      return copy.done.then((page) => ({ command: 'COPY', rowCount: 1, rows: [{ [COPY_COLUMN]: page }] })) as never;
    }
  }
  return CopyingClient;
}

/**
 * The PGlite instance Kysely's dialect is given by `createDb()`: a stand-in statement runs as a COPY to PGlite's blob,
 * on the instance or inside the transaction the statement came in; everything else goes to PGlite as it is.
 */
export function copyingPglite(pglite: PGlite): PGlite {
  type Queryable = Pick<PGlite, 'query'>;
  // PGlite's /dev/blob keeps what a COPY wrote until a query succeeds: after a COPY that failed midway, a throwaway
  // COPY takes the leftovers (or, in a failed transaction where nothing runs, the next COPY on this instance does).
  let leftovers = false;
  const flush = async (target: Queryable) => {
    await target.query(`copy (select 1 where false) to '/dev/blob' (format binary)`);
    leftovers = false;
  };
  const query = (target: Queryable) =>
    (async (text: string, ...rest: unknown[]) => {
      const request = standIn(text);
      if (!request) return (target.query as (...a: unknown[]) => unknown)(text, ...rest);
      if (leftovers) await flush(target);
      let result: Awaited<ReturnType<PGlite['query']>>;
      try {
        result = await target.query(`copy (${request.query}) to '/dev/blob' (format binary)`);
      } catch (error) {
        leftovers = true;
        await flush(target).catch(() => undefined);
        throw error;
      }
      if (!result.blob) throw new Error('copyBinaryOut: PGlite returned no COPY data');
      const bytes = new Uint8Array(await result.blob.arrayBuffer());
      const into = reusable(request.reuse, bytes.length);
      let page: Buffer;
      if (into) {
        into.set(bytes);
        page = into.subarray(0, bytes.length);
      } else {
        page = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      }
      return { rows: [{ [COPY_COLUMN]: page }], fields: [], affectedRows: 0 };
    }) as PGlite['query'];
  return new Proxy(pglite, {
    get(target, property) {
      if (property === 'query') return query(target);
      if (property === 'transaction') {
        return <T>(fn: (tx: Parameters<Parameters<PGlite['transaction']>[0]>[0]) => Promise<T>) =>
          target.transaction((tx) => fn(new Proxy(tx, { get: (t, p) => (p === 'query' ? query(t) : bound(t, p)) })));
      }
      return bound(target, property);
    },
  });
}

/** A property of `target`, its methods bound to it (PGlite keeps its state in private fields). */
function bound(target: object, property: string | symbol): unknown {
  const value: unknown = Reflect.get(target, property, target);
  return typeof value === 'function' ? value.bind(target) : value;
}

/** A Kysely instance or transaction: what runs a compiled query. */
export interface QueryExecutor {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

/**
 * The rows of `query` (a SELECT without parameters: values must be inlined, as COPY takes none) in the binary COPY
 * format, header and trailer included, read on `db`'s connection (in its transaction, for a transaction); null when
 * `db` is not one `createDb()` made (or a transaction of one). `reuse`: a buffer an earlier call returned, no longer
 * in use, whose memory may hold this result (it does when it is big enough).
 */
export async function copyBinaryOut(db: QueryExecutor, query: string, reuse?: Buffer): Promise<Buffer | null> {
  const id = nextRequest++;
  requests.set(id, { query, reuse });
  try {
    const { rows } = await db.executeQuery(
      CompiledQuery.raw(`${STAND_IN}${id}`) as CompiledQuery<Record<string, unknown>>,
    );
    const page = rows[0]?.[COPY_COLUMN];
    return Buffer.isBuffer(page) ? page : null;
  } finally {
    requests.delete(id);
  }
}
