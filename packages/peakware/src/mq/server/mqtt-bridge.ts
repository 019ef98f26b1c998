/**
 * MQTT access for devices and browsers (over TCP), bridged onto the broker with aedes
 * (an optional dependency, loaded only when the bridge starts).
 *
 * Topic mapping: MQTT topic `mq/<topic>` or `mq/<topic>/<tag>`. A PUBLISH stores the
 * payload as the body (QoS 1 is acknowledged after PostgreSQL committed it). A SUBSCRIBE to
 * `mq/<topic>` (or `mq/<topic>/<tag>`, or `mq/<topic>/#` and `mq/<topic>/+` for every tag)
 * starts a consumer of group `mqtt-<clientId>` from the latest offset; each message is
 * published to the client at the subscription's QoS (0 or 1; 2 is granted as 1) and acked.
 * A subscription that cannot be served (a wildcard in the topic's place, an unknown topic,
 * a wrong secret) is refused in its SUBACK (0x80) and logged; the connection stays up. The MQTT password
 * is the credential of secured topics: the produce secret to publish, the consume secret
 * to subscribe. A bad publish (unknown topic, oversized, wrong secret, malformed topic) is
 * refused by disconnecting that client, as MQTT 3.1.1 prescribes; the broker keeps serving.
 */
import net from 'node:net';
import type { Client } from 'aedes';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { signMessage } from '../message-signature.js';
import { DEFAULT_BACKOFF_MS } from '../message-types.js';
import type { Broker } from './broker.js';

/** A running MQTT listener. */
export interface MqttBridge {
  /** The bound TCP port. */
  port: number;
  close(): Promise<void>;
}

interface Parsed {
  topic: string;
  tag: string | undefined;
}

function parseTopic(mqttTopic: string): Parsed | undefined {
  const m = /^mq\/([A-Za-z0-9._-]{1,127})(?:\/([A-Za-z0-9._-]{1,128}))?$/.exec(mqttTopic);
  if (m === null) return undefined;
  return { topic: m[1]!, tag: m[2] };
}

/** A subscription filter: like {@link parseTopic}, and `mq/<topic>/#` or `/+` for every tag. */
function parseFilter(filter: string): Parsed | undefined {
  const wild = /^(mq\/[A-Za-z0-9._-]{1,127})\/[#+]$/.exec(filter);
  return parseTopic(wild === null ? filter : wild[1]!);
}

/** Starts the MQTT listener on `port` (0 picks one). */
export async function startMqttBridge(
  broker: Broker,
  options: { port: number; host: string; logger: Logger },
): Promise<MqttBridge> {
  const { Aedes } = await import('aedes');
  const logger = options.logger;
  const passwords = new Map<string, string>();
  const pumps = new Map<string, { stop: () => void }>();
  const aedes = await Aedes.createBroker({
    authenticate: (client, _username, password, done) => {
      if (password !== undefined) passwords.set(client.id, password.toString('utf8'));
      done(null, true);
    },
    authorizePublish: (client, packet, callback) => {
      if (client === null) {
        callback(null);
        return;
      }
      const parsed = parseTopic(packet.topic);
      if (parsed === undefined) {
        logger.warn(
          { client: client.id, topic: packet.topic },
          'mqtt: refused a publish outside mq/<topic>[/<tag>]',
        );
        callback(new Error(`publish to mq/<topic>[/<tag>], not '${packet.topic}'`));
        return;
      }
      (async () => {
        const record = await broker.store.requireTopic(parsed.topic);
        const body = Buffer.from(packet.payload).toString('base64');
        const wire: Record<string, unknown> = {
          body,
          ...(parsed.tag === undefined ? {} : { tag: parsed.tag }),
        };
        if (record.produceSecret !== null) {
          if (passwords.get(client.id) !== record.produceSecret)
            throw new Error(
              `topic '${parsed.topic}' needs its produce secret as the MQTT password`,
            );
          wire.signature = signMessage(record.produceSecret, {
            topic: parsed.topic,
            body,
            tag: parsed.tag,
            keys: [],
            properties: {},
          });
        }
        await broker.send(parsed.topic, [wire]);
      })().then(
        () => callback(null),
        (err) => {
          logger.warn(
            { client: client.id, topic: packet.topic, err: errorMessage(err) },
            'mqtt: refused a publish',
          );
          callback(err instanceof Error ? err : new Error(String(err)));
        },
      );
    },
    // Client publishes are stored, not forwarded: subscribers get them through the queue.
    authorizeForward: (_client, packet) =>
      (packet as { clientId?: string }).clientId === undefined ? packet : null,
    // A refused subscription gets 0x80 in its SUBACK (aedes: subscription null); an error
    // here would drop the whole connection with no SUBACK and no reason.
    authorizeSubscribe: (client, subscription, callback) => {
      const refuse = (reason: string) => {
        logger.warn({ client: client?.id, filter: subscription.topic }, `mqtt: ${reason}`);
        callback(null, null);
      };
      const parsed = parseFilter(subscription.topic);
      if (parsed === undefined) {
        refuse(
          `refused a subscription to '${subscription.topic}': subscribe to mq/<topic>, mq/<topic>/<tag> or mq/<topic>/#`,
        );
        return;
      }
      broker.store.requireTopic(parsed.topic).then(
        (record) => {
          if (record.consumeSecret !== null && passwords.get(client.id) !== record.consumeSecret) {
            refuse(`topic '${parsed.topic}' needs its consume secret as the MQTT password`);
            return;
          }
          const qos = subscription.qos >= 1 ? 1 : 0;
          // The SUBACK goes out once the group's start offsets are fixed, so a message
          // published after the client saw its SUBACK is delivered (it was skipped when it
          // came before the pump's first receive).
          startPump(
            client,
            subscription.topic,
            parsed,
            record.consumeSecret ?? undefined,
            qos,
            () => callback(null, { ...subscription, qos }),
          );
        },
        (err: unknown) => refuse(`refused a subscription: ${errorMessage(err)}`),
      );
    },
  });

  const startPump = (
    client: Client,
    mqttTopic: string,
    parsed: Parsed,
    secret: string | undefined,
    qos: 0 | 1,
    onStarted: () => void,
  ) => {
    const clientId = client.id;
    const key = `${clientId}\u0000${mqttTopic}`;
    if (pumps.has(key)) return onStarted();
    let running = true;
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      onStarted();
    };
    const group = `mqtt-${clientId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100)}`;
    pumps.set(key, {
      stop: () => {
        running = false;
      },
    });
    void (async () => {
      while (running && !aedes.closed && !client.closed) {
        try {
          const messages = await broker.receive({
            group,
            topic: parsed.topic,
            consumerId: 'mqtt',
            max: 100,
            // The first receive returns at once: it fixes the group's offsets ('latest').
            waitMs: started ? 1000 : 0,
            tags: parsed.tag === undefined ? null : [parsed.tag],
            startFrom: 'latest',
            broadcasting: false,
            maxRetries: 3,
            backoffMs: [...DEFAULT_BACKOFF_MS],
            invisibleMs: 30_000,
            secret,
          });
          start();
          for (const m of messages) {
            await new Promise<void>((resolve) => {
              client.publish(
                {
                  cmd: 'publish',
                  topic: `mq/${parsed.topic}${m.tag === null ? '' : `/${m.tag}`}`,
                  payload: Buffer.from(m.body, 'base64'),
                  qos,
                  retain: false,
                  dup: false,
                },
                () => resolve(),
              );
            });
          }
          if (messages.length > 0) {
            await broker.ack({
              group,
              topic: parsed.topic,
              consumerId: 'mqtt',
              receipts: messages.map((m) => m.receipt),
              secret,
            });
          }
        } catch (err) {
          start();
          logger.warn(
            { err: errorMessage(err), clientId },
            'mqtt: subscription pump failed; retrying',
          );
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
      start();
      pumps.delete(key);
    })();
  };

  const stopPumps = (clientId: string, topic?: string) => {
    for (const [key, pump] of pumps) {
      if (
        key.startsWith(`${clientId}\u0000`) &&
        (topic === undefined || key === `${clientId}\u0000${topic}`)
      )
        pump.stop();
    }
  };
  aedes.on('clientDisconnect', (client) => {
    stopPumps(client.id);
    passwords.delete(client.id);
  });
  aedes.on('unsubscribe', (topics, client) => {
    for (const t of topics) stopPumps(client.id, t);
  });
  aedes.on('clientError', (client, err) =>
    logger.debug({ client: client.id, err: err.message }, 'mqtt: client error'),
  );

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  logger.info({ port }, 'mqtt listening');
  return {
    port,
    close: async () => {
      for (const pump of pumps.values()) pump.stop();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
