/**
 * MQTT access for devices (over TCP) and browsers (over WebSocket, `wsPort`, the `mqtt`
 * subprotocol), bridged onto the broker with aedes and ws (optional dependencies, loaded
 * only when the bridge starts).
 *
 * Topic mapping: MQTT topic `mq/<topic>` or `mq/<topic>/<tag>`. A PUBLISH stores the
 * payload as the body (QoS 1 is acknowledged after PostgreSQL committed it). A SUBSCRIBE to
 * `mq/<topic>` (or `mq/<topic>/<tag>`, or `mq/<topic>/#` and `mq/<topic>/+` for every tag)
 * starts a consumer of group `mqtt-<clientId>` from the latest offset; each message is
 * published to the client at the subscription's QoS (0 or 1; 2 is granted as 1) and acked.
 * A subscription that cannot be served (a wildcard in the topic's place, an unknown topic,
 * a wrong secret, no grant) is refused in its SUBACK (0x80) and logged; the connection
 * stays up.
 *
 * Credentials: the MQTT username is the client's app credential (or an admin token), as
 * the HTTP routes take it as a bearer token; a CONNECT without a working one is refused
 * (CONNACK 4, bad username or password) and counted as a failed authentication of its
 * address with the HTTP ones (the node's limiter: after 10 a minute from one address its
 * CONNECTs are refused with CONNACK 3, server unavailable, as HTTP answers 429; both on
 * /metrics). Each publish needs the app's `produce:<topic>`
 * grant, each subscription `consume:<topic>/mqtt-<clientId>` (its group); the credential is
 * checked again at each (through the node's short cache), so a revoked or narrowed one stops
 * working on open connections too. The MQTT password is the secret of secured topics: the
 * produce secret to publish, the consume secret to subscribe. A bad publish (unknown topic,
 * oversized, wrong secret, no grant, malformed topic) is refused by disconnecting that
 * client, as MQTT 3.1.1 prescribes; the broker keeps serving.
 */
import net from 'node:net';
import type { AuthenticateError, Client } from 'aedes';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { realName, scopeAllows } from '../../server/app-scopes.js';
import type { AuthFailureCounter, Caller } from '../../server/http-api.js';
import { newMessageNonce, signMessage } from '../message-signature.js';
import { DEFAULT_BACKOFF_MS } from '../message-types.js';
import type { Broker } from './broker.js';

/** A running MQTT listener. */
export interface MqttBridge {
  /** The bound TCP port. */
  port: number;
  /** The bound WebSocket port, when asked for. */
  wsPort?: number;
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

/** The caller a credential proves, or undefined when it does not work (the node's Authenticator). */
export type MqttAuthenticate = (credential: string) => Promise<Caller | undefined>;

/** The consumer group a client's subscriptions consume in: `mqtt-<clientId>`. */
function groupOf(clientId: string): string {
  return `mqtt-${clientId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100)}`;
}

/** Whether `caller` may `kind` on `resource`: an app by its grants, an operator with the admin role. */
function mayUse(caller: Caller, kind: 'produce' | 'consume', resource: string): boolean {
  return caller.kind === 'role'
    ? caller.role === 'admin'
    : scopeAllows(caller.scopes, kind, resource);
}

/** Starts the MQTT listener on `port` (0 picks one). */
export async function startMqttBridge(
  broker: Broker,
  options: {
    port: number;
    host: string;
    /** Also serve MQTT over WebSocket (browsers: MQTT.js `ws://host:port/mqtt`) on this port. */
    wsPort?: number;
    logger: Logger;
    authenticate: MqttAuthenticate;
    /** The node's failed-authentication limiter (none: failed logins are not limited). */
    failures?: AuthFailureCounter;
  },
): Promise<MqttBridge> {
  const { Aedes } = await import('aedes');
  const logger = options.logger;
  const credentials = new Map<string, string>();
  const passwords = new Map<string, string>();
  const pumps = new Map<string, { stop: () => void }>();
  /** The caller a connected client's credential proves now (undefined: no longer works). */
  const callerOf = async (client: Client): Promise<Caller | undefined> => {
    const credential = credentials.get(client.id);
    if (credential === undefined) return undefined;
    const caller = await options.authenticate(credential);
    return caller?.kind === 'role' && caller.role !== 'admin' ? undefined : caller;
  };
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      // Over WebSocket the connection is a stream: the address is the upgrade request's.
      const address =
        (client.conn as Partial<net.Socket>).remoteAddress ??
        (client.req as { socket?: net.Socket } | undefined)?.socket?.remoteAddress ??
        'unknown';
      const refuse = () => {
        logger.warn(
          { client: client.id, address },
          'mqtt: refused a connection: its username is not a working app credential',
        );
        const err = new Error(
          'the MQTT username must be an app credential (peak app create) or an admin token',
        ) as AuthenticateError;
        err.returnCode = 4;
        done(err, false);
      };
      const wait = options.failures?.retryAfterMs(address) ?? 0;
      if (wait > 0) {
        logger.warn(
          { client: client.id, address, retryAfterMs: wait },
          'mqtt: refused a connection: too many wrong credentials from its address',
        );
        const err = new Error(
          `too many wrong credentials from ${address}; try again in ${Math.ceil(wait / 1000)} s`,
        ) as AuthenticateError;
        err.returnCode = 3;
        done(err, false);
        return;
      }
      if (username === undefined || username.length === 0) {
        // No credential at all is not a wrong one (HTTP's 401 is not counted either).
        refuse();
        return;
      }
      options.authenticate(username).then(
        (caller) => {
          if (caller === undefined || (caller.kind === 'role' && caller.role !== 'admin')) {
            // A wrong credential is a failed authentication; a working token of a role
            // below admin is a refusal of what it asked, as HTTP counts them.
            if (caller === undefined) options.failures?.fail(address);
            else if (options.failures !== undefined) options.failures.denied++;
            refuse();
            return;
          }
          // Only a working credential is kept: a refused CONNECT reusing a connected
          // client's id leaves that client's credential alone.
          credentials.set(client.id, username);
          if (password !== undefined) passwords.set(client.id, password.toString('utf8'));
          done(null, true);
        },
        (err: unknown) => {
          logger.warn({ client: client.id, err: errorMessage(err) }, 'mqtt: authentication failed');
          refuse();
        },
      );
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
        const caller = await callerOf(client);
        if (caller === undefined || !mayUse(caller, 'produce', realName(parsed.topic)))
          throw new Error(
            `${caller?.who ?? 'this client'} may not produce to topic '${parsed.topic}': its credential needs the grant 'produce:${parsed.topic}'`,
          );
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
          const nonce = newMessageNonce();
          const signedAt = Date.now();
          wire.nonce = nonce;
          wire.signedAt = signedAt;
          wire.signature = signMessage(record.produceSecret, {
            topic: parsed.topic,
            body,
            tag: parsed.tag,
            keys: [],
            properties: {},
            nonce,
            signedAt,
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
      const group = groupOf(client.id);
      Promise.all([callerOf(client), broker.store.requireTopic(parsed.topic)]).then(
        ([caller, record]) => {
          const resource = `${realName(parsed.topic)}/${group}`;
          if (caller === undefined || !mayUse(caller, 'consume', resource)) {
            refuse(
              `refused a subscription to '${subscription.topic}': the credential needs the grant 'consume:${resource}'`,
            );
            return;
          }
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
    const group = groupOf(clientId);
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
    credentials.delete(client.id);
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
  const ws = options.wsPort === undefined ? undefined : await listenWebSocket(options.wsPort);
  if (ws !== undefined) logger.info({ port: ws.port }, 'mqtt over websocket listening');
  return {
    port,
    ...(ws === undefined ? {} : { wsPort: ws.port }),
    close: async () => {
      for (const pump of pumps.values()) pump.stop();
      await ws?.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };

  /** MQTT over WebSocket (the `mqtt` subprotocol, any path): each connection a stream for aedes. */
  async function listenWebSocket(
    wsPort: number,
  ): Promise<{ port: number; close(): Promise<void> }> {
    const { WebSocketServer, createWebSocketStream } = await import('ws');
    const http = await import('node:http');
    const httpServer = http.createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('MQTT over WebSocket: connect with the mqtt subprotocol\n');
    });
    const wss = new WebSocketServer({
      server: httpServer,
      maxPayload: 1 << 20,
      handleProtocols: (protocols) =>
        protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false,
    });
    wss.on('connection', (socket, req) => {
      const stream = createWebSocketStream(socket);
      stream.on('error', (err) => logger.debug({ err: err.message }, 'mqtt: websocket error'));
      aedes.handle(stream as unknown as net.Socket, req);
    });
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(wsPort, options.host, () => resolve());
    });
    const a = httpServer.address();
    return {
      port: typeof a === 'object' && a !== null ? a.port : wsPort,
      close: async () => {
        for (const c of wss.clients) c.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      },
    };
  }
}
