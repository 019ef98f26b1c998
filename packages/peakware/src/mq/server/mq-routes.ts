/**
 * The message queue's HTTP API under /api/v1/mq (see src/mq/README.md for the model).
 * Producers and consumers call the send / receive / ack routes with no admin token
 * (`auth: 'sdk'`): a secured topic checks its own credentials instead (an HMAC signature
 * per message for producing, the consume secret in `x-peak-mq-secret` for consuming).
 * Managing topics, resending dead letters and resetting offsets need the admin token.
 *
 * The broker starts when the server becomes ready and stops before it closes, so long
 * polls end at shutdown instead of holding it up. Its settings (retention, session, half
 * message check-backs, the MQTT bridge's port and host) are `ctx.settings.mq`, read from
 * PEAK_MQ_* variables by server/server-settings.ts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, errorMessage, InvalidArgumentError, PeakError } from '../../core/errors.js';
import type { ApiModule } from '../../server/http-api.js';
import { DEFAULT_BACKOFF_MS, DEFAULT_MAX_RETRIES } from '../message-types.js';
import { Broker } from './broker.js';
import { type MqttBridge, startMqttBridge } from './mqtt-bridge.js';

const SDK = { config: { auth: 'sdk' as const } };

type Body = Record<string, unknown>;

function body(request: FastifyRequest): Body {
  const b = request.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) {
    throw new InvalidArgumentError('the request body must be a JSON object', {
      details: { input: 'body' },
    });
  }
  return b as Body;
}

function int(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === 'string' && value !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
      {
        details: { input: name },
      },
    );
  }
  return n;
}

function time(value: unknown, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n =
    typeof value === 'string' && /^\d+$/.test(value)
      ? Number(value)
      : typeof value === 'number'
        ? value
        : Date.parse(String(value));
  if (!Number.isFinite(n)) {
    throw new InvalidArgumentError(
      `${name} must be epoch ms or an ISO time, got ${JSON.stringify(value)}`,
      { details: { input: name } },
    );
  }
  return n;
}

function secretOf(request: FastifyRequest): string | undefined {
  const h = request.headers['x-peak-mq-secret'];
  return typeof h === 'string' ? h : undefined;
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
  app.addHook('onReady', async () => {
    const { mqtt: mqttAt, ...brokerSettings } = ctx.settings.mq;
    broker = await Broker.start(ctx.pool, ctx.logger.child({ component: 'mq' }), brokerSettings);
    if (mqttAt !== undefined) {
      mqtt = await startMqttBridge(broker, {
        ...mqttAt,
        logger: ctx.logger.child({ component: 'mqtt' }),
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

  // MQ errors carry their own codes; map them to statuses here, the rest go to the
  // common error handler.
  const handle =
    <T>(fn: (request: FastifyRequest) => Promise<T>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<T | undefined> => {
      const result = await fn(request);
      // A long poll that ends because the server is closing must not leave its
      // keep-alive connection open: that would hold up the server's shutdown.
      if (closing) void reply.header('connection', 'close');
      return result;
    };

  app.post(
    '/api/v1/mq/topics',
    handle(async (request) => b().createTopic({ name: undefined, ...body(request) })),
  );
  app.get(
    '/api/v1/mq/topics',
    handle(async () => ({
      topics: (await b().store.listTopics()).map((t) => ({
        name: t.name,
        queues: t.queues,
        ordered: t.ordered,
        internal: t.internal,
        secured: t.produceSecret !== null,
        maxBodyBytes: t.maxBodyBytes,
        messages: t.messages,
        createdAt: t.createdAt.toISOString(),
      })),
    })),
  );

  app.post<{ Params: { topic: string } }>(
    '/api/v1/mq/topics/:topic/messages',
    SDK,
    handle(async (request) => {
      const { topic } = request.params as { topic: string };
      return b().send(topic, body(request).messages);
    }),
  );

  app.post(
    '/api/v1/mq/topics/:topic/half',
    SDK,
    handle(async (request) => {
      const { topic } = request.params as { topic: string };
      const x = body(request);
      return b().sendHalf(topic, x.message, x.producerGroup);
    }),
  );
  app.post(
    '/api/v1/mq/transactions/:id/:action',
    SDK,
    handle(async (request) => {
      const { id, action } = request.params as { id: string; action: string };
      if (action !== 'commit' && action !== 'rollback') {
        throw new InvalidArgumentError(`action must be commit or rollback, got '${action}'`, {
          details: { input: 'action' },
        });
      }
      const by = typeof body(request).by === 'string' ? String(body(request).by) : 'producer';
      const x = body(request);
      await b().endHalf(
        id,
        action,
        by,
        typeof x.secret === 'string' ? x.secret : secretOf(request),
      );
      return { id, action };
    }),
  );
  app.post(
    '/api/v1/mq/producer-groups/:producerGroup/checks',
    SDK,
    handle(async (request) => {
      const { producerGroup } = request.params as { producerGroup: string };
      const x = body(request);
      const secrets: Record<string, string> = {};
      if (typeof x.secrets === 'object' && x.secrets !== null && !Array.isArray(x.secrets)) {
        for (const [k, v] of Object.entries(x.secrets)) if (typeof v === 'string') secrets[k] = v;
      }
      return {
        checks: await b().dueChecks(producerGroup, int(x.max, 'max', 1, 1000, 100), secrets),
      };
    }),
  );

  /** The receive parameters shared by long-poll receive and push streams. */
  const receiveParams = (request: FastifyRequest) => {
    const { group } = request.params as { group: string };
    const x = body(request);
    if (typeof x.topic !== 'string')
      throw new InvalidArgumentError('topic is required', { details: { input: 'topic' } });
    if (typeof x.consumerId !== 'string' || !/^[A-Za-z0-9._:@-]{1,128}$/.test(x.consumerId)) {
      throw new InvalidArgumentError('consumerId is required: 1-128 letters, digits, . _ : @ -', {
        details: { input: 'consumerId' },
      });
    }
    let tags: string[] | null = null;
    if (x.tags !== undefined && x.tags !== null && x.tags !== '*') {
      if (!Array.isArray(x.tags) || !x.tags.every((t) => typeof t === 'string')) {
        throw new InvalidArgumentError("tags must be an array of strings or '*'", {
          details: { input: 'tags' },
        });
      }
      tags = x.tags as string[];
    }
    let backoffMs: number[] = [...DEFAULT_BACKOFF_MS];
    if (x.backoffMs !== undefined) {
      if (
        !Array.isArray(x.backoffMs) ||
        x.backoffMs.length === 0 ||
        !x.backoffMs.every((v) => Number.isInteger(v) && v >= 0 && v <= 86_400_000)
      ) {
        throw new InvalidArgumentError(
          'backoffMs must be a non-empty array of integers 0-86400000',
          { details: { input: 'backoffMs' } },
        );
      }
      backoffMs = x.backoffMs as number[];
    }
    if (x.startFrom !== undefined && x.startFrom !== 'earliest' && x.startFrom !== 'latest') {
      throw new InvalidArgumentError("startFrom must be 'earliest' or 'latest'", {
        details: { input: 'startFrom' },
      });
    }
    return {
      x,
      req: {
        group,
        topic: x.topic,
        consumerId: x.consumerId,
        tags,
        startFrom: x.startFrom === 'latest' ? ('latest' as const) : ('earliest' as const),
        broadcasting: x.broadcasting === true,
        maxRetries: int(x.maxRetries, 'maxRetries', 0, 100, DEFAULT_MAX_RETRIES),
        backoffMs,
        invisibleMs: int(x.invisibleMs, 'invisibleMs', 100, 12 * 3_600_000, 30_000),
        secret: secretOf(request),
      },
    };
  };

  app.post(
    '/api/v1/mq/groups/:group/receive',
    SDK,
    handle(async (request) => {
      const { x, req } = receiveParams(request);
      const messages = await b().receive({
        ...req,
        max: int(x.max, 'max', 1, 1000, 32),
        waitMs: int(x.waitMs, 'waitMs', 0, 30_000, 20_000),
      });
      return { messages };
    }),
  );
  // Streamed push: one long-lived response of NDJSON lines (one delivery each; blank lines
  // are keep-alives), at most `inflight` unacked at once; acks and nacks use the routes
  // below. Bad requests are answered before the stream starts.
  app.post('/api/v1/mq/groups/:group/stream', SDK, async (request, reply) => {
    // Refusals (unknown topic, bad secret, bad arguments) are thrown before the hijack, so
    // the shared error handler answers them with their status.
    const { x, req } = receiveParams(request);
    const broker = b();
    await broker.openStream(req);
    const opened = { broker, req, inflight: int(x.inflight, 'inflight', 1, 1000, 32) };
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
      await opened.broker.stream(
        opened.req,
        opened.inflight,
        async (batch) => {
          if (!res.write(`${batch.map((m) => JSON.stringify(m)).join('\n')}\n`))
            await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
        },
        ended.signal,
        () => void res.write('\n'),
      );
    } catch (err) {
      request.log.warn({ err: errorMessage(err) }, 'mq: push stream failed; closing it');
    }
    res.end();
  });
  app.post(
    '/api/v1/mq/groups/:group/ack',
    SDK,
    handle(async (request) => {
      const { group } = request.params as { group: string };
      const x = body(request);
      return b().ack({
        group,
        topic: String(x.topic),
        consumerId: String(x.consumerId ?? ''),
        receipts: x.receipts,
        secret: secretOf(request),
      });
    }),
  );
  app.post(
    '/api/v1/mq/groups/:group/nack',
    SDK,
    handle(async (request) => {
      const { group } = request.params as { group: string };
      const x = body(request);
      return b().nack({
        group,
        topic: String(x.topic),
        consumerId: String(x.consumerId ?? ''),
        receipts: x.receipts,
        reason: x.reason,
        delayMs: x.delayMs,
        secret: secretOf(request),
      });
    }),
  );
  app.post(
    '/api/v1/mq/groups/:group/leave',
    SDK,
    handle(async (request) => {
      const { group } = request.params as { group: string };
      const x = body(request);
      await b().leave(group, String(x.topic), String(x.consumerId), x.broadcasting === true);
      return { left: true };
    }),
  );

  app.get(
    '/api/v1/mq/messages/:id',
    handle(async (request) => {
      const { id } = request.params as { id: string };
      const d = await b().describe(id);
      if (!d.found)
        throw new PeakError(
          ErrorCodes.NOT_FOUND,
          `no message ${id} (it may be older than the retention)`,
          { details: { id } },
        );
      return d;
    }),
  );
  app.get(
    '/api/v1/mq/messages',
    handle(async (request) => {
      const q = request.query as Record<string, string | undefined>;
      const from = time(q.from, 'from');
      const to = time(q.to, 'to');
      return {
        messages: await b().query({
          ...(q.key === undefined ? {} : { key: q.key }),
          ...(q.topic === undefined ? {} : { topic: q.topic }),
          ...(q.tag === undefined ? {} : { tag: q.tag }),
          ...(from === undefined ? {} : { from }),
          ...(to === undefined ? {} : { to }),
          limit: int(q.limit, 'limit', 1, 1000, 100),
        }),
      };
    }),
  );

  app.get(
    '/api/v1/mq/groups/:group/dlq',
    handle(async (request) => {
      const { group } = request.params as { group: string };
      const q = request.query as Record<string, string | undefined>;
      return { messages: await b().dlq(group, int(q.limit, 'limit', 1, 1000, 100)) };
    }),
  );
  app.post(
    '/api/v1/mq/groups/:group/dlq/resend',
    handle(async (request) => {
      const { group } = request.params as { group: string };
      return b().resendDlq(group, body(request).ids);
    }),
  );
  app.post(
    '/api/v1/mq/groups/:group/reset-offset',
    handle(async (request) => {
      const { group } = request.params as { group: string };
      const x = body(request);
      if (typeof x.topic !== 'string')
        throw new InvalidArgumentError('topic is required', { details: { input: 'topic' } });
      const at = time(x.timestamp, 'timestamp');
      if (at === undefined)
        throw new InvalidArgumentError('timestamp is required (epoch ms or ISO time)', {
          details: { input: 'timestamp' },
        });
      return { queues: await b().resetOffset(group, x.topic, at) };
    }),
  );
  app.get(
    '/api/v1/mq/stats',
    handle(async () => b().stats()),
  );
};
