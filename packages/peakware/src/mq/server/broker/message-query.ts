/**
 * Query and trace: everything known about one message id (stored copies, a pending copy,
 * dead letters, and its trace with `produced`, `stored` and first deliveries filled in from
 * the rows that carry them), and messages by key or by topic + tag + time range.
 */
import { InvalidArgumentError } from '../../../core/errors.js';
import type { ReceivedMessage } from '../../message-types.js';
import type { MessagePosition, MessageRow } from '../message-records.js';
import type { MessageStore } from '../message-store.js';
import { toReceived } from './received-message.js';

/** What `peak mq trace <id>` shows: where a message is and what happened to it. */
export interface MessageDescription {
  id: string;
  found: boolean;
  message?: ReceivedMessage;
  state: string;
  copies: {
    topic: string;
    queueId: number;
    queueOffset: string;
    storedAt: string;
    reconsume: number;
  }[];
  deadLetters: { group: string; deadAt: string; reason: string | null; attempts: number }[];
  trace: { at: string; event: string; group?: string; consumer?: string; detail?: string }[];
}

/** A query by key, or by topic (with optional tag and time range, epoch ms). */
export interface MessageQuery {
  key?: string;
  topic?: string;
  tag?: string;
  from?: number;
  to?: number;
  /** Most messages in this page, 1-1000. Default 100. */
  limit?: number;
  /** The `next` of the previous page: this page starts after it. */
  cursor?: string;
}

/** One page of a message query; `next` (absent on the last page) asks for the following one. */
export interface MessagePage {
  messages: ReceivedMessage[];
  next?: string;
}

function encodeCursor(row: MessageRow & { stored_us: string }): string {
  return `${row.stored_us}:${row.queue_id}:${row.queue_offset}:${row.topic}`;
}

function decodeCursor(cursor: string): MessagePosition {
  const m = /^(\d{1,19}):(\d{1,9}):(\d{1,19}):(.+)$/.exec(cursor);
  if (m === null)
    throw new InvalidArgumentError(
      `cursor ${JSON.stringify(cursor)} is not one a message query answered as next`,
      { details: { input: 'cursor' } },
    );
  return { storedUs: m[1]!, queueId: Number(m[2]), queueOffset: m[3]!, topic: m[4]! };
}

/** Everything known about one message id: stored copies, pending copy, DLQ, trace. */
export async function describeMessage(
  store: MessageStore,
  id: string,
): Promise<MessageDescription> {
  if (!/^\d{1,19}$/.test(id))
    throw new InvalidArgumentError(`not a message id: ${id}`, { details: { input: 'id' } });
  await store.flushTrace();
  const [copies, pending, dlq] = await Promise.all([
    store.byId(id),
    store.pendingById(id),
    store.dlqById(id),
  ]);
  const trace = await store.traceOf(id, copies);
  const inflight = await store.inflightFirst(copies);
  const first = copies[0];
  const p = pending[0];
  const events: {
    at: string;
    event: string;
    group?: string;
    consumer?: string;
    detail?: string;
  }[] = [];
  if (first !== undefined) {
    events.push({ at: first.born_at.toISOString(), event: 'produced' });
    events.push({
      at: first.stored_at.toISOString(),
      event: 'stored',
      detail: `${first.topic} queue ${first.queue_id} offset ${first.queue_offset}`,
    });
  } else if (p !== undefined) {
    events.push({ at: p.born_at.toISOString(), event: 'produced' });
  }
  for (const f of inflight) {
    events.push({
      at: f.delivered_at.toISOString(),
      event: 'delivered',
      group: f.grp.split('@')[0]!,
      ...(f.consumer_id === null ? {} : { consumer: f.consumer_id }),
      detail: 'in flight',
    });
  }
  for (const t of trace) {
    if (t.delivered_at !== null) {
      events.push({
        at: t.delivered_at.toISOString(),
        event: 'delivered',
        ...(t.grp === null ? {} : { group: t.grp }),
        ...(t.consumer === null ? {} : { consumer: t.consumer }),
      });
    }
    events.push({
      at: t.at.toISOString(),
      event: t.event,
      ...(t.grp === null ? {} : { group: t.grp }),
      ...(t.consumer === null ? {} : { consumer: t.consumer }),
      ...(t.detail === null ? {} : { detail: t.detail }),
    });
  }
  events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const state =
    p !== undefined
      ? p.kind === 'half'
        ? 'half (waiting for commit or rollback)'
        : `pending (${p.kind}, due ${p.deliver_at.toISOString()})`
      : first !== undefined
        ? 'stored'
        : 'unknown';
  return {
    id,
    found: first !== undefined || p !== undefined || dlq.length > 0,
    ...(first === undefined ? {} : { message: toReceived(first, first.reconsume, '') }),
    state,
    copies: copies.map((c) => ({
      topic: c.topic,
      queueId: c.queue_id,
      queueOffset: c.queue_offset,
      storedAt: c.stored_at.toISOString(),
      reconsume: c.reconsume,
    })),
    deadLetters: dlq.map((d) => ({
      group: d.grp,
      deadAt: d.dead_at.toISOString(),
      reason: d.reason,
      attempts: d.reconsume,
    })),
    trace: events,
  };
}

/**
 * One page of messages by key (newest first), or by topic + tag + time range (oldest
 * first). Pages follow each other by cursor, with no cap on how many: a search by time
 * reaches every message the topic stored in the range.
 */
export async function queryMessages(store: MessageStore, q: MessageQuery): Promise<MessagePage> {
  const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
  const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  let rows: (MessageRow & { stored_us: string })[];
  if (q.key !== undefined) {
    rows = await store.byKey(q.key, q.topic, limit + 1, after);
  } else if (q.topic !== undefined) {
    const to = q.to ?? Date.now() + 1000;
    const from = q.from ?? to - 3_600_000;
    rows = await store.byTime(q.topic, q.tag, new Date(from), new Date(to), limit + 1, after);
  } else {
    throw new InvalidArgumentError('query needs a key, or a topic (with optional tag, from, to)', {
      details: { input: 'query' },
    });
  }
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    messages: page.map((m) => toReceived(m, m.reconsume, '')),
    ...(rows.length > limit && last !== undefined ? { next: encodeCursor(last) } : {}),
  };
}
