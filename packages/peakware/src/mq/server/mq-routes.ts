/**
 * The message queue's HTTP API under /api/v1/mq (see src/mq/README.md for the model).
 * Producers and consumers call the send / receive / ack routes with an app credential
 * (`auth: 'sdk'`) whose grants name the topic (`produce:<topic>`) or the topic and group
 * (`consume:<topic>/<group>`); a secured topic checks its own credentials on top (an HMAC
 * signature per message for producing, the consume secret in `x-peak-mq-secret` for
 * consuming). Reads of messages by id or key show an app only the topics it may produce or
 * consume. Managing topics, resending dead letters and resetting offsets need the admin
 * token; removing a topic or a group's subscription (`peak mq topic|group rm`) an operator's.
 *
 * Every route declares its body, query and path parameters as JSON schemas (checked by the
 * host before the handler; see server/route-schema.ts), so a client hears which field is
 * wrong and what it takes; the broker checks again what only it knows (the topic exists,
 * its size limit, signatures, the body is base64 once http-body-encoding.ts has turned a
 * utf8 or json body into base64) and for its non-HTTP callers (MQTT).
 *
 * The broker starts when the server becomes ready and stops before it closes, so long
 * polls end at shutdown instead of holding it up. Its settings (retention, session, half
 * message check-backs, the MQTT bridge's port and host) are `ctx.settings.mq`
 * (server/server-settings.ts).
 */
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { ErrorCodes, errorMessage, InvalidArgumentError, PeakError } from '../../core/errors.js';
import { allows, authorize, callerApp, mayReadTopic, scopeResource } from '../../server/access.js';
import type { ApiModule } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
import { Broker } from './broker.js';
import {
  ackMessages,
  type DataPlaneCaller,
  nackMessages,
  receiveMessages,
  sendMessages,
  subscriptionRequest,
} from './data-plane.js';
import { encodeDelivery, toBase64Message } from './http-body-encoding.js';
import { addMqRpcService } from './mq-rpc-service.js';
import { ackBody, nackBody, receiveBody, sendBody, streamBody, wireMessage } from './mq-schemas.js';
import { type MqttBridge, startMqttBridge } from './mqtt-bridge.js';
import { removeGroup, removeTopic } from './pg-store/topic-removal.js';

const PRODUCE = { config: { auth: 'sdk' as const, scope: 'produce' as const } };
const CONSUME = { config: { auth: 'sdk' as const, scope: 'consume' as const } };

const topicParams = Type.Object({ topic: Type.String({ description: 'the topic' }) });
const groupParams = Type.Object({ group: Type.String({ description: 'the consumer group' }) });
const limit = WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 100);
const time = Type.Union([Type.Number(), Type.String()], {
  takes: 'epoch ms or an ISO time',
});

function toTime(value: number | string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n =
    typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) {
    throw new InvalidArgumentError(
      `${name} must be epoch ms or an ISO time, got ${JSON.stringify(value)}`,
      { details: { input: name } },
    );
  }
  return n;
}

/**
 * Resolves when a push stream's response takes writes again (drain) or is gone (close),
 * leaving neither listener behind (one left per wait piled up on a long stream).
 */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}

function secretOf(request: FastifyRequest): string | undefined {
  const h = request.headers['x-peak-mq-secret'];
  return typeof h === 'string' ? h : undefined;
}

/** The caller of a data-plane route as data-plane.ts takes it. */
function dataCaller(request: FastifyRequest): DataPlaneCaller {
  return { caller: request.caller, secret: secretOf(request) };
}

/** The MQ routes, with their broker's lifecycle tied to the server's. */
export const mqRoutes: ApiModule = (app, ctx) => {
  let broker: Broker | undefined;
  let closing = false;
  const b = (): Broker => {
    if (broker === undefined)
      throw new PeakError(
        ErrorCodes.INTERNAL,
        'the mq broker is not running (starting or stopping)',
      );
    return broker;
  };
  let mqtt: MqttBridge | undefined;
  // The SDK's hot path on the node's RPC port (the host opens it once the node is ready).
  if (ctx.rpc !== undefined) addMqRpcService(ctx.rpc, b);
  app.addHook('onReady', async () => {
    const { mqtt: mqttAt, ...brokerSettings } = ctx.settings.mq;
    broker = await Broker.start(ctx.pool, ctx.logger.child({ component: 'mq' }), brokerSettings);
    if (mqttAt !== undefined) {
      // MQTT clients present their app credential as the username (mqtt-bridge.ts); a host
      // that verifies none (a bare test host) admits no MQTT client.
      const authenticate = ctx.authenticate ?? (async () => undefined);
      mqtt = await startMqttBridge(broker, {
        ...mqttAt,
        logger: ctx.logger.child({ component: 'mqtt' }),
        authenticate,
        ...(ctx.authFailures === undefined ? {} : { failures: ctx.authFailures }),
      });
    }
  });
  app.addHook('preClose', async () => {
    closing = true;
    broker?.wakeAll();
  });
  app.addHook('onClose', async () => {
    await mqtt?.close();
    mqtt = undefined;
    await broker?.stop();
    broker = undefined;
  });

  // A long poll that ends because the server is closing must not leave its keep-alive
  // connection open: that would hold up the server's shutdown.
  app.addHook('onSend', async (request, reply) => {
    if (closing && request.routeOptions.url?.startsWith('/api/v1/mq/'))
      void reply.header('connection', 'close');
  });

  app.post(
    '/api/v1/mq/topics',
    {
      schema: {
        summary: 'Create a topic (secured: returns its produce and consume secrets, once)',
        body: Type.Object({
          name: Type.String({ description: '1-127 letters, digits, . _ -' }),
          queues: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, default: 4 })),
          ordered: Type.Optional(Type.Boolean({ description: 'FIFO per message group' })),
          secured: Type.Optional(
            Type.Boolean({ description: 'require HMAC-signed messages and a consume secret' }),
          ),
          maxBodyBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 4 * 1024 * 1024 })),
          database: Type.Optional(
            Type.String({
              minLength: 1,
              description:
                "the message database to place it on (GET /api/v1/mq/databases); default main, the node's own",
            }),
          ),
        }),
      },
    },
    async (request) => b().createTopic(request.body),
  );
  app.get(
    '/api/v1/mq/databases',
    { schema: { summary: "The message databases topics may be placed on (main: the node's own)" } },
    async () => ({ databases: b().databases() }),
  );
  app.get('/api/v1/mq/topics', { schema: { summary: 'The topics' } }, async () => ({
    topics: (await b().store.listTopics()).map((t) => ({
      name: t.name,
      queues: t.queues,
      ordered: t.ordered,
      internal: t.internal,
      secured: t.produceSecret !== null,
      maxBodyBytes: t.maxBodyBytes,
      messages: t.messages,
      database: t.database,
      createdAt: t.createdAt.toISOString(),
    })),
  }));

  const force = WithDefault(
    Type.Boolean({ description: 'remove it even with unconsumed messages or live consumers' }),
    false,
  );
  app.delete(
    '/api/v1/mq/topics/:topic',
    {
      config: { auth: 'operator' },
      schema: {
        summary:
          'Remove a topic with its messages and every group offset on it (409 PEAK_MQ_IN_USE while in use, unless force)',
        params: Type.Object({ topic: Type.String({ minLength: 1 }) }),
        querystring: Type.Object({ force }),
      },
    },
    async (request) => {
      const removed = await removeTopic(
        await b().poolOf(request.params.topic, ctx.pool),
        request.params.topic,
        { force: request.query.force, sessionMs: ctx.settings.mq.sessionMs },
      );
      await b().forgetTopic(request.params.topic);
      return removed;
    },
  );
  app.delete(
    '/api/v1/mq/groups/:group',
    {
      config: { auth: 'operator' },
      schema: {
        summary:
          "Remove a group's subscription to a topic; a group left with none goes whole (409 PEAK_MQ_IN_USE while in use, unless force)",
        params: groupParams,
        querystring: Type.Object({ topic: Type.String({ minLength: 1 }), force }),
      },
    },
    async (request) =>
      removeGroup(
        await b().poolOf(request.query.topic, ctx.pool),
        request.query.topic,
        request.params.group,
        { force: request.query.force, sessionMs: ctx.settings.mq.sessionMs },
      ),
  );

  app.post(
    '/api/v1/mq/topics/:topic/messages',
    {
      ...PRODUCE,
      schema: {
        summary: 'Send 1-1000 messages to a topic (stored together, or none of them)',
        params: topicParams,
        body: sendBody,
      },
    },
    async (request) => sendMessages(b(), dataCaller(request), request.params.topic, request.body),
  );

  app.post(
    '/api/v1/mq/topics/:topic/half',
    {
      ...PRODUCE,
      schema: {
        summary: 'Send a half (transactional) message: delivered only once committed',
        params: topicParams,
        body: Type.Object({
          message: wireMessage,
          producerGroup: Type.String({ description: 'the group checked back for the outcome' }),
        }),
      },
    },
    async (request) => {
      authorize(request, 'produce', scopeResource('produce', request.params.topic));
      return b().sendHalf(
        request.params.topic,
        toBase64Message(request.body.message, 0),
        request.body.producerGroup,
      );
    },
  );
  app.post(
    '/api/v1/mq/transactions/:id/:action',
    {
      ...PRODUCE,
      schema: {
        summary: 'Commit or roll back a half message',
        params: Type.Object({
          id: Type.String({ description: 'the half message id' }),
          action: StringEnum(['commit', 'rollback']),
        }),
        body: Type.Object({
          by: WithDefault(Type.String({ description: 'who ends it, for the trace' }), 'producer'),
          secret: Type.Optional(
            Type.String({ description: "the topic's produce secret (or x-peak-mq-secret)" }),
          ),
        }),
      },
    },
    async (request) => {
      const { id, action } = request.params;
      const x = request.body;
      if (callerApp(request) !== undefined) {
        // Only a producer of the half message's topic may end it.
        const topic = await b().halfTopic(id);
        if (topic !== undefined) authorize(request, 'produce', scopeResource('produce', topic));
      }
      await b().endHalf(id, action, x.by, x.secret ?? secretOf(request));
      return { id, action };
    },
  );
  app.post(
    '/api/v1/mq/producer-groups/:producerGroup/checks',
    {
      ...PRODUCE,
      schema: {
        summary: "Half messages of a producer group due for a check-back (the producer's poll)",
        params: Type.Object({ producerGroup: Type.String() }),
        body: Type.Object({
          max: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 100),
          secrets: WithDefault(
            Type.Record(Type.String(), Type.String(), {
              description: "topic → produce secret, for secured topics' bodies",
            }),
            {},
          ),
        }),
      },
    },
    async (request) => ({
      checks: await b().dueChecks(
        request.params.producerGroup,
        request.body.max,
        request.body.secrets,
        (topic) => allows(request, 'produce', scopeResource('produce', topic)),
      ),
    }),
  );

  /** Refuses a caller whose grants do not name `topic/group` for consuming. */
  const mayConsume = (request: FastifyRequest, topic: string, group: string) =>
    authorize(request, 'consume', scopeResource('consume', topic, group));

  app.post(
    '/api/v1/mq/groups/:group/receive',
    {
      ...CONSUME,
      schema: {
        summary: 'Long poll: up to max messages for this consumer, waiting up to waitMs',
        params: groupParams,
        body: receiveBody,
      },
    },
    async (request, reply) => {
      // A client that goes away (closed, aborted, its process killed) ends the poll at once:
      // left waiting, it would claim the next messages for nobody, invisible until they
      // time out.
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      return receiveMessages(
        b(),
        dataCaller(request),
        request.params.group,
        request.body,
        gone.signal,
      );
    },
  );
  // Streamed push: one long-lived response of NDJSON lines (one delivery each; blank lines
  // are keep-alives), at most `inflight` unacked at once; acks and nacks use the routes
  // below. Bad requests are answered before the stream starts.
  app.post(
    '/api/v1/mq/groups/:group/stream',
    {
      ...CONSUME,
      schema: {
        summary:
          'Streamed push: NDJSON deliveries as they come (blank lines keep alive), at most inflight unacked',
        params: groupParams,
        body: streamBody,
      },
    },
    async (request, reply) => {
      // Refusals (unknown topic, bad secret) are thrown before the hijack, so the shared
      // error handler answers them with their status.
      const req = subscriptionRequest(dataCaller(request), request.params.group, request.body);
      const broker = b();
      await broker.openStream(req);
      const { inflight, encoding } = request.body;
      void reply.hijack();
      const res = reply.raw;
      // `connection: close`: a stream's connection is not worth reusing, and one left open
      // after the stream ends (the server closing) would hold up the server's close.
      res.writeHead(200, {
        'content-type': 'application/x-ndjson',
        'cache-control': 'no-store',
        connection: 'close',
      });
      const ended = new AbortController();
      res.on('close', () => ended.abort());
      try {
        await broker.stream(
          req,
          inflight,
          async (batch) => {
            const lines = batch.map((m) => JSON.stringify(encodeDelivery(m, encoding)));
            if (!res.write(`${lines.join('\n')}\n`)) await drained(res);
          },
          ended.signal,
          () => void res.write('\n'),
        );
      } catch (err) {
        request.log.warn({ err: errorMessage(err) }, 'mq: push stream failed; closing it');
      }
      res.end();
    },
  );
  app.post(
    '/api/v1/mq/groups/:group/ack',
    {
      ...CONSUME,
      schema: {
        summary: 'Ack deliveries by their receipts',
        params: groupParams,
        body: ackBody,
      },
    },
    async (request) => ackMessages(b(), dataCaller(request), request.params.group, request.body),
  );
  app.post(
    '/api/v1/mq/groups/:group/nack',
    {
      ...CONSUME,
      schema: {
        summary:
          'Fail deliveries: retried after their backoff, or dead-lettered after the last try',
        params: groupParams,
        body: nackBody,
      },
    },
    async (request) => nackMessages(b(), dataCaller(request), request.params.group, request.body),
  );
  app.post(
    '/api/v1/mq/groups/:group/leave',
    {
      ...CONSUME,
      schema: {
        summary: 'A consumer leaves its group: its queues go to the others at once',
        params: groupParams,
        body: Type.Object({
          topic: Type.String({ minLength: 1 }),
          consumerId: Type.String({ minLength: 1 }),
          broadcasting: WithDefault(Type.Boolean(), false),
        }),
      },
    },
    async (request) => {
      const x = request.body;
      mayConsume(request, x.topic, request.params.group);
      await b().leave(request.params.group, x.topic, x.consumerId, x.broadcasting);
      return { left: true };
    },
  );

  app.get(
    '/api/v1/mq/messages/:id',
    {
      schema: {
        summary: 'Everything known about one message: stored copies, pending copy, DLQ, trace',
        params: Type.Object({ id: Type.String({ description: 'the message id' }) }),
      },
    },
    async (request) => {
      const { id } = request.params;
      const d = await b().describe(id);
      if (!d.found)
        throw new PeakError(
          ErrorCodes.NOT_FOUND,
          `no message ${id} (it may be older than the retention)`,
          { details: { id } },
        );
      // The message itself only to callers that may read its topic.
      if (d.message !== undefined && !mayReadTopic(request, d.message.topic)) {
        const { message: _hidden, ...rest } = d;
        return rest;
      }
      return d;
    },
  );
  app.get(
    '/api/v1/mq/messages',
    {
      schema: {
        summary:
          'One page of messages by key (newest first), or by topic with tag and time range (oldest first); next asks for the following page',
        querystring: Type.Object({
          key: Type.Optional(Type.String()),
          topic: Type.Optional(Type.String()),
          tag: Type.Optional(Type.String()),
          from: Type.Optional(Type.String({ takes: 'epoch ms or an ISO time' })),
          to: Type.Optional(Type.String({ takes: 'epoch ms or an ISO time' })),
          limit,
          cursor: Type.Optional(
            Type.String({ maxLength: 400, description: "the previous page's next" }),
          ),
        }),
      },
    },
    async (request) => {
      const q = request.query;
      const from = toTime(q.from, 'from');
      const to = toTime(q.to, 'to');
      const page = await b().query({
        ...(q.key === undefined ? {} : { key: q.key }),
        ...(q.topic === undefined ? {} : { topic: q.topic }),
        ...(q.tag === undefined ? {} : { tag: q.tag }),
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        limit: q.limit,
      });
      // An app sees the messages of topics it may produce or consume only.
      return { ...page, messages: page.messages.filter((m) => mayReadTopic(request, m.topic)) };
    },
  );

  app.get(
    '/api/v1/mq/groups/:group/dlq',
    {
      schema: {
        summary: "A group's dead letters",
        params: groupParams,
        querystring: Type.Object({ limit }),
      },
    },
    async (request) => ({
      messages: (await b().dlq(request.params.group, request.query.limit)).filter((m) =>
        allows(request, 'consume', scopeResource('consume', m.topic, request.params.group)),
      ),
    }),
  );
  app.post(
    '/api/v1/mq/groups/:group/dlq/resend',
    {
      config: { auth: 'operator' },
      schema: {
        summary: 'Send dead letters back to the group (all, or by id)',
        params: groupParams,
        body: Type.Object({
          ids: WithDefault(
            Type.Union([Type.Literal('all'), Type.Array(Type.String({ pattern: '^\\d{1,19}$' }))], {
              takes: "'all' or an array of message ids",
            }),
            'all',
          ),
        }),
      },
    },
    async (request) => b().resendDlq(request.params.group, request.body.ids),
  );
  app.post(
    '/api/v1/mq/groups/:group/reset-offset',
    {
      config: { auth: 'operator' },
      schema: {
        summary: "Move a group's offsets on a topic to a time within retention (replay or skip)",
        params: groupParams,
        body: Type.Object({ topic: Type.String({ minLength: 1 }), timestamp: time }),
      },
    },
    async (request) => {
      const at = toTime(request.body.timestamp, 'timestamp');
      if (at === undefined)
        throw new InvalidArgumentError('timestamp is required (epoch ms or ISO time)', {
          details: { input: 'timestamp' },
        });
      return { queues: await b().resetOffset(request.params.group, request.body.topic, at) };
    },
  );
  app.get(
    '/api/v1/mq/stats',
    { schema: { summary: "The broker's counters and each group's backlog" } },
    async () => b().stats(),
  );
};
