/**
 * Keeps a gateway's state current: one Server-Sent-Events stream to the control plane
 * (`GET /api/v1/gateway/watch?since=<rev>`), reconnecting across the nodes with backoff and
 * asking each time only for what changed after the rev it has. Every change is also saved to
 * a local snapshot file (written at most once a second, off the event loop's hot path) and read back by `start()`, so a gateway
 * started while no control-plane node answers serves with its last state.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ControlPlaneClient, EventSubscription } from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SseEvent } from '../core/sse-reader.js';
import type { GatewayChange } from './gateway-objects.js';
import type { GatewayState } from './gateway-state.js';

/** Where the state in force came from. */
export type StateOrigin = 'server' | 'snapshot' | 'none';

/** Follows the control plane's gateway feed into a {@link GatewayState}. */
export class StateSync<R> {
  readonly #http: ControlPlaneClient;
  readonly #state: GatewayState<R>;
  readonly #file: string | undefined;
  readonly #logger: Logger;
  readonly #waiters = new Set<() => void>();
  readonly #listeners = new Set<(changes: readonly GatewayChange[]) => void>();
  #subscription: EventSubscription | undefined;
  #origin: StateOrigin = 'none';
  #saveTimer: NodeJS.Timeout | undefined;
  #saving: Promise<void> | undefined;
  #lastApplyMs = 0;

  constructor(
    http: ControlPlaneClient,
    state: GatewayState<R>,
    logger: Logger,
    snapshotFile?: string,
  ) {
    this.#http = http;
    this.#state = state;
    this.#logger = logger;
    this.#file = snapshotFile;
  }

  /** Where the state came from. */
  get origin(): StateOrigin {
    return this.#origin;
  }

  /** Calls `fn` with every batch of changes applied (tests, metrics). */
  onChanges(fn: (changes: readonly GatewayChange[]) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #load(file: string): void {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as {
        rev?: number;
        objects?: GatewayChange[];
      };
      if (typeof data.rev !== 'number' || !Array.isArray(data.objects)) return;
      this.#state.reset(data.objects, data.rev);
      this.#origin = 'snapshot';
      this.#logger.info(
        { file, rev: data.rev, objects: data.objects.length },
        'gateway state read from the snapshot file',
      );
    } catch {
      // no snapshot yet
    }
  }

  /** Opens the stream; resolves once the server answered, or after `timeoutMs` with what is known. */
  async start(timeoutMs = 5000): Promise<StateOrigin> {
    if (this.#file !== undefined) this.#load(this.#file);
    this.#subscription = this.#http.subscribe('/api/v1/gateway/watch', (e) => this.#onEvent(e), {
      query: () => ({ since: this.#state.rev }),
      backoff: { initialMs: 200, maxMs: 5000 },
      onError: (err, server) =>
        this.#logger.warn(
          { err: errorMessage(err), server },
          'gateway watch stream failed; retrying',
        ),
    });
    if (this.#origin !== 'server') {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, timeoutMs);
        const waiters = this.#waiters;
        function done() {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
    return this.#origin;
  }

  /** How long applying the last batch of changes took, ms (parse, compile, insert). */
  get lastApplyMs(): number {
    return this.#lastApplyMs;
  }

  #onEvent(e: SseEvent): void {
    const started = performance.now();
    let applied: readonly GatewayChange[];
    if (e.event === 'snapshot') {
      const s = JSON.parse(e.data) as { rev: number; objects: GatewayChange[] };
      this.#state.reset(s.objects, s.rev);
      applied = s.objects;
    } else if (e.event === 'changes') {
      const c = JSON.parse(e.data) as { rev: number; changes: GatewayChange[] };
      this.#state.apply(c.changes, c.rev);
      applied = c.changes;
    } else return;
    this.#lastApplyMs = performance.now() - started;
    this.#origin = 'server';
    for (const w of [...this.#waiters]) w();
    for (const fn of this.#listeners) fn(applied);
    this.#scheduleSave();
  }

  #scheduleSave(): void {
    if (this.#file === undefined || this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      if (this.#saving !== undefined) {
        this.#scheduleSave();
        return;
      }
      this.#saving = this.#saveAsync().finally(() => {
        this.#saving = undefined;
      });
    }, 1000);
    this.#saveTimer.unref();
  }

  async #saveAsync(): Promise<void> {
    const file = this.#file!;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, this.#state.snapshotText(), { mode: 0o600 });
      await rename(tmp, file);
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err), file },
        'could not write the gateway snapshot file',
      );
    }
  }

  /** Writes the state to the snapshot file now (temp file, then rename). */
  save(): void {
    const file = this.#file;
    if (file === undefined) return;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, this.#state.snapshotText(), { mode: 0o600 });
      renameSync(tmp, file);
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err), file },
        'could not write the gateway snapshot file',
      );
    }
  }

  /** Closes the stream (the snapshot file keeps the last state). */
  close(): void {
    this.#subscription?.close();
    if (this.#saveTimer !== undefined) {
      clearTimeout(this.#saveTimer);
      this.#saveTimer = undefined;
      this.save();
    }
    for (const w of [...this.#waiters]) w();
  }
}
