/**
 * `peak mq ...`: topics (list, create, rm), group rm, send, consume, query, trace, dead
 * letters, offset reset and stats, against a running `peak server`'s broker.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DeadLetter, ReceivedMessage } from '../../admin/mq-admin.js';
import { UsageError } from '../../core/errors.js';
import { Outbox } from '../../mq/outbox.js';
import { readBodyArgument } from '../body-input.js';
import type { Command, OptionSpec, Output } from '../command.js';
import {
  ADMIN_OPTIONS,
  adminClient,
  brokerClient,
  findCredential,
  SERVER_OPTIONS,
  serverList,
} from '../control-client.js';
import { parseTime } from '../parse.js';
import { stopOnSignals } from '../watch.js';

/** A message as the lines below print it: received, queried or dead-lettered. */
type Listed = Pick<ReceivedMessage, 'id' | 'topic' | 'tag' | 'keys' | 'body' | 'bornAt'> & {
  storedAt?: number;
};

/** A body as text, cut at 200 characters unless `wide` (`-o wide`). */
function text(b64: string, wide: boolean): string {
  const s = Buffer.from(b64, 'base64').toString('utf8');
  return !wide && s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function line(m: Listed, wide = false): string {
  const at = new Date(m.storedAt ?? m.bornAt).toISOString();
  return `${m.id}  ${at}  ${m.topic}${m.tag === null ? '' : ` [${m.tag}]`}${m.keys.length > 0 ? ` keys=${m.keys.join(',')}` : ''}  ${text(m.body, wide)}`;
}

/**
 * `peak mq consume --push`: a `Consumer` (push: HTTP stream, or the binary path's loop)
 * printing each message as it comes, acked after it is printed (unless --no-ack: then it
 * fails the delivery, so the message comes back later), until Ctrl-C or --max messages.
 */
async function pushConsume(
  values: Record<string, unknown>,
  topic: string,
  group: string,
  consumerId: string,
  out: Output,
  wide: boolean,
): Promise<number> {
  const { Consumer } = await import('../../mq/consumer.js');
  const token = await findCredential(values, 'app');
  const max = values.max === undefined ? Number.POSITIVE_INFINITY : Number(values.max);
  const stop = stopOnSignals();
  let seen = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  stop.signal.addEventListener('abort', () => done());
  const consumer = new Consumer({
    servers: serverList(values),
    ...(token === undefined ? {} : { token }),
    ...(values.secret === undefined ? {} : { secret: String(values.secret) }),
    group,
    topic,
    consumerId,
    push: true,
    startFrom: 'earliest',
    concurrency: 1,
    handler: (m) => {
      if (seen >= max) throw new UsageError('enough messages taken; this one is left for later');
      seen++;
      const listed: Listed & { body: string } = {
        id: m.id,
        topic: m.topic,
        tag: m.tag,
        keys: m.keys,
        body: m.body.toString('base64'),
        bornAt: m.bornAt,
        storedAt: m.storedAt,
      };
      out.json({
        ...listed,
        group: m.group,
        properties: m.properties,
        reconsumeTimes: m.reconsumeTimes,
      });
      out.line(line(listed, wide));
      // The last one: stop taking more now (close stops dispatch at once; it finishes after
      // this handler returns and its ack is sent).
      if (seen >= max) {
        void closeOnce();
        done();
      }
      if (values['no-ack'] === true) throw new UsageError('--no-ack: left unacknowledged');
    },
  });
  let closing: Promise<void> | undefined;
  const closeOnce = () => {
    closing ??= consumer.close();
    return closing;
  };
  consumer.start();
  out.note(
    `consuming ${topic} as group ${group} (push, consumer ${consumerId})${Number.isFinite(max) ? ` until ${max} message(s)` : ''}; Ctrl-C to stop`,
  );
  try {
    await finished;
  } finally {
    stop.release();
    await closeOnce();
  }
  return 0;
}

function need(positionals: string[], index: number, what: string, path: string): string {
  const v = positionals[index];
  if (v === undefined || v === '')
    throw new UsageError(`'${path}' needs ${what}; see '${path} --help'`);
  return v;
}

const topicsList: Command = {
  name: 'list',
  watch: true,
  summary: 'list topics with their queues and message counts',
  options: SERVER_OPTIONS,
  async run({ values, out }) {
    const topics = await (await adminClient(values)).mq.topics();
    out.json({ topics });
    // The database column only when topics are placed on more than one.
    const placed = topics.some((t) => t.database !== undefined && t.database !== 'main');
    for (const t of topics) {
      if (t.internal) continue;
      out.line(
        `${t.name.padEnd(32)} queues ${String(t.queues).padEnd(4)} ${t.ordered ? 'ordered ' : 'normal  '}${t.secured ? 'secured ' : ''}${placed ? `on ${t.database.padEnd(10)} ` : ''}${t.messages} messages`,
      );
    }
    if (topics.length === 0)
      out.line("no topics yet; create one with 'peak mq topics create <name>'");
    return 0;
  },
};

const topicsCreate: Command = {
  name: 'create',
  summary: 'create a topic (secured topics print their secrets once)',
  args: '<name>',
  options: {
    ...ADMIN_OPTIONS,
    queues: {
      type: 'string',
      valueName: 'N',
      description: 'number of queues',
      default: '4',
      integer: { min: 1 },
    },
    ordered: { type: 'boolean', description: 'FIFO per message group' },
    secured: { type: 'boolean', description: 'require HMAC-signed messages and a consume secret' },
    'max-body': {
      type: 'string',
      valueName: 'BYTES',
      description: 'largest body accepted (default 256 KiB)',
      integer: { min: 1 },
    },
    database: {
      type: 'string',
      valueName: 'NAME',
      description:
        "the message database to place it on (the nodes' PEAK_MQ_DATABASES; default main, the node's own)",
    },
  },
  examples: [
    'peak mq topics create orders --queues 8',
    'peak mq topics create order-steps --ordered --secured',
    'peak mq topics create clicks --database mq2',
  ],
  async run({ values, positionals, out }) {
    const name = need(positionals, 0, 'a topic name', 'peak mq topics create');
    const admin = await adminClient(values, { admin: true });
    const r = await admin.mq.createTopic({
      name,
      queues: Number(values.queues),
      ordered: values.ordered === true,
      secured: values.secured === true,
      ...(values['max-body'] === undefined ? {} : { maxBodyBytes: Number(values['max-body']) }),
      ...(typeof values.database === 'string' ? { database: values.database } : {}),
    });
    out.json(r);
    out.line(
      r.created
        ? `created topic ${r.name} (${r.queues} queues, on database ${r.database})`
        : `topic ${r.name} already exists on database ${r.database}; unchanged`,
    );
    if (r.produceSecret !== undefined) {
      out.line('secrets (shown once):');
      out.line(`  produce  ${r.produceSecret}`);
      out.line(`  consume  ${r.consumeSecret}`);
    }
    return 0;
  },
};

const FORCE: OptionSpec = {
  type: 'boolean',
  description: 'remove it even with unconsumed messages or live consumers',
};

function removedLine(removed: Record<string, number>): string {
  const n = (t: string) => removed[t] ?? 0;
  return `${n('mq_messages')} messages, ${n('mq_pending')} pending, ${n('mq_offsets')} queue offsets, ${n('mq_consumers')} consumers`;
}

const topicsRm: Command = {
  name: 'rm',
  aliases: ['delete'],
  summary:
    'remove a topic: its messages and every group offset on it (refused while it has unconsumed messages or live consumers, unless --force)',
  args: '<topic>',
  options: { ...ADMIN_OPTIONS, force: FORCE },
  examples: ['peak mq topic rm old-orders', 'peak mq topic rm old-orders --force'],
  async run({ values, positionals, out }) {
    const name = need(positionals, 0, 'a topic name', 'peak mq topic rm');
    const admin = await adminClient(values, { admin: true });
    const r = await admin.mq.removeTopic(name, { force: values.force === true });
    out.json(r);
    out.line(`removed topic ${name}: ${removedLine(r.removed)}`);
    return 0;
  },
};

const databases: Command = {
  name: 'databases',
  summary:
    "the message databases topics may be placed on (main: the node's own; PEAK_MQ_DATABASES adds more)",
  options: SERVER_OPTIONS,
  async run({ values, out }) {
    const admin = await adminClient(values);
    const [names, topics] = await Promise.all([admin.mq.databases(), admin.mq.topics()]);
    const placed = names.map((name) => ({
      name,
      topics: topics.filter((t) => !t.internal && (t.database ?? 'main') === name).length,
    }));
    out.json({ databases: placed });
    for (const d of placed) out.line(`${d.name.padEnd(16)} ${d.topics} topics`);
    if (names.length === 1)
      out.line('one database; add more with PEAK_MQ_DATABASES=name=postgres://… on every node');
    return 0;
  },
};

const topics: Command = {
  name: 'topics',
  aliases: ['topic'],
  summary: 'list, create or remove topics',
  subcommands: [topicsList, topicsCreate, topicsRm],
  options: SERVER_OPTIONS,
  run: (ctx) => topicsList.run!(ctx),
};

const groupRm: Command = {
  name: 'rm',
  aliases: ['delete'],
  summary:
    "remove a group's subscription to a topic (refused while it has unacked messages or live consumers there, unless --force); a group left with no topic goes whole",
  args: '<topic> <group>',
  options: { ...ADMIN_OPTIONS, force: FORCE },
  examples: ['peak mq group rm orders old-billing'],
  async run({ values, positionals, out }) {
    const topic = need(positionals, 0, 'a topic name', 'peak mq group rm');
    const group = need(positionals, 1, 'a group name', 'peak mq group rm');
    const admin = await adminClient(values, { admin: true });
    const r = await admin.mq.removeGroup(topic, group, { force: values.force === true });
    out.json(r);
    out.line(
      `removed group ${group} from topic ${topic}: ${removedLine(r.removed)}${r.groupRemoved ? `; the group read no other topic, so its settings, retry topic and ${r.removed.mq_dlq ?? 0} dead letters went too` : ''}`,
    );
    return 0;
  },
};

const groups: Command = {
  name: 'groups',
  aliases: ['group'],
  summary: "remove a consumer group's subscription to a topic",
  subcommands: [groupRm],
};

const send: Command = {
  name: 'send',
  summary: 'send one message (body from the argument, @FILE or stdin)',
  args: '<topic> [<body>|@FILE|-]',
  description:
    "The body is the argument's text, the bytes of FILE with @FILE, or standard input with - or no body (when stdin is not a terminal). A text that starts with @ is written @@...",
  options: {
    ...SERVER_OPTIONS,
    tag: { type: 'string', valueName: 'TAG', description: 'message tag' },
    keys: { type: 'string', valueName: 'K1,K2', description: 'business keys, comma-separated' },
    group: { type: 'string', valueName: 'GROUP', description: 'ordering group (ordered topics)' },
    delay: {
      type: 'string',
      valueName: 'MS',
      description: 'deliver no earlier than this many ms from now',
      integer: {},
    },
  },
  examples: [
    'peak mq send orders \'{"orderId":42}\' --tag created --keys order-42',
    'peak mq send reminders hello --delay 60000',
    'peak mq send orders @order.json',
    'date | peak mq send logs -',
  ],
  async run({ values, positionals, out }) {
    const topic = need(positionals, 0, 'a topic', 'peak mq send');
    const body = await readBodyArgument(positionals[1], "'peak mq send' body");
    const delay = values.delay === undefined ? undefined : Number(values.delay);
    if (delay !== undefined && (!Number.isFinite(delay) || delay < 0))
      throw new UsageError(`--delay: expected ms >= 0, got '${values.delay}'`);
    const r = await (await brokerClient(values)).send(topic, [
      {
        body: body.toString('base64'),
        ...(values.tag === undefined ? {} : { tag: String(values.tag) }),
        ...(values.keys === undefined
          ? {}
          : {
              keys: String(values.keys)
                .split(',')
                .filter((k) => k !== ''),
            }),
        ...(values.group === undefined ? {} : { group: String(values.group) }),
        ...(delay === undefined ? {} : { deliverAt: Date.now() + delay }),
      },
    ]);
    out.json(r);
    out.line(`sent ${r.ids[0]} to ${r.topic}`);
    return 0;
  },
};

const consume: Command = {
  name: 'consume',
  summary: 'receive messages as a consumer group and ack them (long-poll)',
  args: '<topic>',
  options: {
    ...SERVER_OPTIONS,
    group: {
      type: 'string',
      valueName: 'GROUP',
      description: 'consumer group',
      default: 'peak-cli',
    },
    max: {
      type: 'string',
      valueName: 'N',
      description:
        'most messages to take (default 10; with --push, stop after N, else run until Ctrl-C)',
      integer: { min: 1 },
    },
    push: {
      type: 'boolean',
      description:
        "keep consuming as a push consumer (the SDK's Consumer: the group's queues shared with its other members, each message printed as it comes and acked) until Ctrl-C or --max; under --json one JSON line a message",
    },
    wait: {
      type: 'string',
      valueName: 'MS',
      description: 'long-poll wait',
      default: '5000',
      integer: {},
    },
    'no-ack': {
      type: 'boolean',
      description: 'do not ack (they are redelivered after the invisibility time)',
    },
    secret: {
      type: 'string',
      valueName: 'SECRET',
      description: "the topic's consume secret",
      env: 'PEAK_MQ_SECRET',
    },
  },
  async run({ values, positionals, out, wide }) {
    const topic = need(positionals, 0, 'a topic', 'peak mq consume');
    const group = String(values.group);
    const consumerId = `cli-${randomBytes(3).toString('hex')}`;
    if (values.push === true) return pushConsume(values, topic, group, consumerId, out, wide);
    const broker = await brokerClient(
      values,
      values.secret === undefined ? undefined : String(values.secret),
    );
    const { messages } = await broker.receive(
      group,
      { topic, consumerId, tags: '*', startFrom: 'earliest', broadcasting: false },
      { max: Number(values.max ?? 10), waitMs: Number(values.wait) },
    );
    if (values['no-ack'] !== true && messages.length > 0) {
      await broker.ack(
        group,
        topic,
        consumerId,
        messages.map((m) => m.receipt),
      );
    }
    await broker.leave(group, topic, consumerId, false);
    out.json({ messages });
    for (const m of messages) out.line(line(m, wide));
    if (messages.length === 0) out.line('no messages');
    return 0;
  },
};

const QUERY_OPTIONS: Record<string, OptionSpec> = {
  ...SERVER_OPTIONS,
  key: { type: 'string', valueName: 'KEY', description: 'messages carrying this key' },
  topic: {
    type: 'string',
    valueName: 'TOPIC',
    description: 'messages of this topic (with --tag, --from, --to)',
  },
  tag: { type: 'string', valueName: 'TAG', description: 'only this tag' },
  from: {
    type: 'string',
    valueName: 'TIME',
    description: 'stored at or after (ISO, epoch ms, or 30m/2h/1d ago); default 1h ago',
  },
  to: { type: 'string', valueName: 'TIME', description: 'stored before; default now' },
  limit: {
    type: 'string',
    valueName: 'N',
    description: 'most results',
    default: '100',
    integer: { min: 1 },
  },
};

const query: Command = {
  name: 'query',
  summary: 'find messages by id, key, or topic + tag + time range',
  args: '[<id>]',
  options: QUERY_OPTIONS,
  examples: [
    'peak mq query 123456789012345',
    'peak mq query --key order-42',
    'peak mq query --topic orders --tag created --from 2h',
  ],
  async run({ values, positionals, out, wide }) {
    const admin = await adminClient(values);
    if (positionals[0] !== undefined) {
      const d = await admin.mq.message(positionals[0]);
      out.json(d);
      if (d.message !== undefined) out.line(line(d.message, wide));
      out.line(`state: ${d.state}`);
      return 0;
    }
    if (values.key === undefined && values.topic === undefined)
      throw new UsageError("'peak mq query' needs an id, --key, or --topic; see --help");
    const from =
      values.from === undefined ? undefined : parseTime(String(values.from), '--from', 'ago');
    const to = values.to === undefined ? undefined : parseTime(String(values.to), '--to', 'ago');
    const messages = await admin.mq.query({
      ...(values.key === undefined ? {} : { key: String(values.key) }),
      ...(values.topic === undefined ? {} : { topic: String(values.topic) }),
      ...(values.tag === undefined ? {} : { tag: String(values.tag) }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      limit: Number(values.limit),
    });
    out.json({ messages });
    for (const m of messages) out.line(line(m, wide));
    if (messages.length === 0) out.line('no messages matched');
    return 0;
  },
};

const trace: Command = {
  name: 'trace',
  summary: "a message's life: produced, stored, delivered, acked / failed, retried, dead-lettered",
  args: '<id>',
  options: SERVER_OPTIONS,
  async run({ values, positionals, out }) {
    const id = need(positionals, 0, 'a message id', 'peak mq trace');
    const d = await (await adminClient(values)).mq.message(id);
    out.json(d);
    out.line(`message ${id}: ${d.state}`);
    for (const t of d.trace) {
      out.line(
        `  ${t.at}  ${t.event.padEnd(14)} ${t.group ?? ''}${t.consumer === undefined ? '' : `/${t.consumer}`}${t.detail === undefined ? '' : `  ${t.detail}`}`,
      );
    }
    return 0;
  },
};

const dlq: Command = {
  name: 'dlq',
  summary: "list a consumer group's dead letters, or resend them (--resend all | ID,ID)",
  args: '<group>',
  options: {
    ...ADMIN_OPTIONS,
    resend: {
      type: 'string',
      valueName: 'all|IDS',
      description: 'send these dead letters back to the group',
    },
    limit: {
      type: 'string',
      valueName: 'N',
      description: 'most to list',
      default: '100',
      integer: { min: 1 },
    },
  },
  async run({ values, positionals, out }) {
    const group = need(positionals, 0, 'a consumer group', 'peak mq dlq');
    if (values.resend !== undefined) {
      const admin = await adminClient(values, { admin: true });
      const ids = values.resend === 'all' ? 'all' : String(values.resend).split(',');
      const r = await admin.mq.resendDeadLetters(group, ids);
      out.json(r);
      out.line(`resent ${r.resent.length} message(s) to group ${group}`);
      return 0;
    }
    const messages: DeadLetter[] = await (await adminClient(values)).mq.deadLetters(group, {
      limit: Number(values.limit),
    });
    out.json({ messages });
    for (const m of messages)
      out.line(`${line(m)}  (after ${m.reconsumeTimes} tries: ${m.reason ?? ''})`);
    if (messages.length === 0) out.line(`no dead letters for group ${group}`);
    return 0;
  },
};

const resetOffset: Command = {
  name: 'reset-offset',
  summary: 'replay: move a group on a topic back (or forward) to a time within retention',
  args: '<group> <topic> <time>',
  options: ADMIN_OPTIONS,
  examples: [
    'peak mq reset-offset points orders 2h',
    'peak mq reset-offset points orders 2026-11-11T00:00:00Z',
  ],
  async run({ values, positionals, out }) {
    const group = need(positionals, 0, 'a consumer group', 'peak mq reset-offset');
    const topic = need(positionals, 1, 'a topic', 'peak mq reset-offset');
    const at = parseTime(need(positionals, 2, 'a time', 'peak mq reset-offset'), '<time>', 'ago');
    const admin = await adminClient(values, { admin: true });
    const queues = await admin.mq.resetOffset(group, topic, at ?? 0);
    out.json({ queues });
    out.line(`group ${group} on ${topic} now starts at ${new Date(at ?? 0).toISOString()}:`);
    for (const q of queues) out.line(`  queue ${q.queueId}  offset ${q.offset}`);
    return 0;
  },
};

const stats: Command = {
  name: 'stats',
  watch: true,
  summary: 'TPS in/out and delivery latency per topic, backlog per group and queue',
  options: SERVER_OPTIONS,
  async run({ values, out }) {
    const s = await (await adminClient(values)).mq.stats();
    out.json(s);
    out.line('topic                            tps in   tps out  latency p50/p99 ms (this node)');
    for (const t of s.topics)
      out.line(
        `${t.topic.padEnd(32)} ${String(t.tpsIn).padEnd(8)} ${String(t.tpsOut).padEnd(8)} ${t.latencyMs.p50}/${t.latencyMs.p99}`,
      );
    out.line();
    out.line('group                            topic                backlog');
    for (const g of s.groups) out.line(`${g.group.padEnd(32)} ${g.topic.padEnd(20)} ${g.backlog}`);
    return 0;
  },
};

const outboxInstall: Command = {
  name: 'install',
  summary: "create the transactional outbox's tables (peak_outbox.*) in an application database",
  options: {
    db: {
      type: 'string',
      valueName: 'URL',
      description: 'the application database (postgres://...)',
      env: 'PEAK_OUTBOX_DB',
    },
  },
  examples: ['peak mq outbox install --db postgres://app@localhost:5432/shop'],
  async run({ values, out }) {
    if (typeof values.db !== 'string' || values.db === '')
      throw new UsageError(
        "'peak mq outbox install' needs --db <url> (or PEAK_OUTBOX_DB): the database your services write their rows in",
      );
    const pool = new pg.Pool({ connectionString: values.db, max: 1 });
    try {
      await Outbox.install(pool);
    } finally {
      await pool.end();
    }
    out.json({ installed: true });
    out.line('outbox tables ready: peak_outbox.messages, peak_outbox.dead');
    return 0;
  },
};

const outbox: Command = {
  name: 'outbox',
  summary: 'the transactional outbox in an application database',
  subcommands: [outboxInstall],
};

/** `peak mq`. */
export const mqCommand: Command = {
  name: 'mq',
  summary: 'message queue: topics, send, consume, query, trace, dead letters, replay, outbox',
  subcommands: [
    topics,
    groups,
    databases,
    send,
    consume,
    query,
    trace,
    dlq,
    resetOffset,
    stats,
    outbox,
  ],
};
