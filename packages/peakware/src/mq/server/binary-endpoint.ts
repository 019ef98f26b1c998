/**
 * The broker's binary data path (binary-protocol.ts has the contract): an RPC provider on
 * its own port hosting `peak.mq` (send, receive, ack, nack) for the SDK's producers and
 * consumers. It is the HTTP routes' hot path over the RPC framing, not a second API:
 *
 *   - every call carries its credential and is authenticated as an HTTP request is (the
 *     node's Authenticator and its cache; wrong credentials count against the address in
 *     the same limiter; an operator token needs the admin role, as on the `sdk` routes);
 *   - its body is checked against the HTTP route's schema (mq-schemas.ts) with the same
 *     compiler, so a bad field is refused with the same words;
 *   - data-plane.ts makes the resource check and calls the broker, as the routes do;
 *   - a long poll whose connection closes ends at once (the call's signal), so it claims
 *     nothing for a consumer that is gone.
 *
 * The RPC provider brings the transport's bounds: malformed frames are refused to their
 * sender only, frames over `maxFrameBytes` close that connection, incomplete frames share
 * one memory budget and a time limit, a peer that does not read its answers is not read.
 */
import type { TSchema } from '@sinclair/typebox';
import { z } from 'zod';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { defineService, RpcServer } from '../../rpc/index.js';
import type { AuthFailureCounter, Caller } from '../../server/http-api.js';
import { routeValidatorCompiler, validationError } from '../../server/route-schema.js';
import { MQ_BINARY_SERVICE } from '../binary-protocol.js';
import type { Broker } from './broker.js';
import {
  ackMessages,
  type DataPlaneCaller,
  nackMessages,
  receiveMessages,
  sendMessages,
} from './data-plane.js';
import { ackBody, nackBody, receiveBody, sendBody } from './mq-schemas.js';

/** A running binary endpoint. */
export interface BinaryEndpoint {
  /** The address it listens on. */
  readonly host: string;
  readonly port: number;
  /** Stops taking calls, lets the running ones answer, closes. */
  close(): Promise<void>;
}

/** Options of {@link startBinaryEndpoint}. */
export interface BinaryEndpointOptions {
  host: string;
  port: number;
  logger: Logger;
  /** Verifies a credential as the HTTP lifecycle does (undefined: it does not work). */
  authenticate: (token: string) => Promise<Caller | undefined>;
  /** The node's limit on failed authentications per address (shared with HTTP and MQTT). */
  failures?: AuthFailureCounter;
  /**
   * Largest frame, bytes, either way: a send's messages, or a receive's answer (a topic's
   * bodies may be 4 MiB each: a receive whose answer would be larger fails, and what it
   * claimed is delivered again after its invisibility timeout). Default 64 MiB.
   */
  maxFrameBytes?: number;
}

const name = z.string().min(1).max(256);
const credentials = {
  token: z.string().max(4096).optional(),
  secret: z.string().max(4096).optional(),
  body: z.record(z.string(), z.unknown()),
};
const topicCall = z.object({ topic: name, ...credentials });
const groupCall = z.object({ group: name, ...credentials });
type TopicCall = z.output<typeof topicCall>;
type GroupCall = z.output<typeof groupCall>;

const [service, version] = MQ_BINARY_SERVICE.split(':') as [string, string];
const answer = z.unknown();
/** `peak.mq`: the envelope is checked here, the body by the HTTP route's schema. */
const MqBinary = defineService({
  name: service,
  version,
  methods: {
    send: { input: topicCall, output: answer },
    receive: { input: groupCall, output: answer },
    ack: { input: groupCall, output: answer, idempotent: true },
    nack: { input: groupCall, output: answer },
  },
});

/** A body check with the HTTP routes' compiler: the checked body, or PEAK_INVALID_ARGUMENT. */
function bodyCheck<T>(
  compile: ReturnType<typeof routeValidatorCompiler>,
  schema: TSchema,
): (body: unknown) => T {
  const validate = compile({ schema, method: 'POST', url: MQ_BINARY_SERVICE, httpPart: 'body' });
  return (body) => {
    if (validate(body) !== true) {
      const errors = (
        validate as unknown as { errors?: { keyword: string; instancePath: string }[] }
      ).errors;
      throw validationError(errors ?? [], 'body');
    }
    return body as T;
  };
}

/** Starts the endpoint for `broker()` (the broker of the moment: it restarts with the node). */
export async function startBinaryEndpoint(
  broker: () => Broker,
  options: BinaryEndpointOptions,
): Promise<BinaryEndpoint> {
  const { authenticate, failures, logger } = options;
  const compile = routeValidatorCompiler();
  const checkSend = bodyCheck<Parameters<typeof sendMessages>[3]>(compile, sendBody);
  const checkReceive = bodyCheck<Parameters<typeof receiveMessages>[3]>(compile, receiveBody);
  const checkAck = bodyCheck<Parameters<typeof ackMessages>[3]>(compile, ackBody);
  const checkNack = bodyCheck<Parameters<typeof nackMessages>[3]>(compile, nackBody);

  /** The call's caller, verified as HTTP verifies a bearer token. */
  const callerOf = async (
    call: { token?: string; secret?: string },
    remote: string | undefined,
  ): Promise<DataPlaneCaller> => {
    const address = remote ?? 'unknown';
    const wait = failures?.retryAfterMs(address) ?? 0;
    if (wait > 0) {
      throw new PeakError(
        ErrorCodes.AUTH_RATE_LIMITED,
        `too many wrong credentials from ${address}; try again in ${Math.ceil(wait / 1000)} s`,
        { details: { retryAfterMs: wait, sent: false } },
      );
    }
    if (call.token === undefined || call.token === '') {
      throw new PeakError(
        ErrorCodes.UNAUTHENTICATED,
        'the MQ binary path needs a credential on every call: give the producer or consumer an app credential (its token option, or PEAK_CREDENTIAL)',
        { details: { reason: 'missing', sent: false } },
      );
    }
    const caller = await authenticate(call.token);
    if (caller === undefined) {
      failures?.fail(address);
      throw new PeakError(
        ErrorCodes.UNAUTHENTICATED,
        'the credential is not a working app credential or token (wrong, revoked or expired); an admin lists them with peak app ls',
        { details: { reason: 'refused', sent: false } },
      );
    }
    if (caller.kind === 'role' && caller.role !== 'admin') {
      if (failures !== undefined) failures.denied++;
      throw new PeakError(
        ErrorCodes.FORBIDDEN,
        `producing and consuming need an app credential with a grant, or the admin role; ${caller.who} has the ${caller.role} role`,
        { details: { sent: false } },
      );
    }
    return { caller, secret: call.secret };
  };

  const rpc = new RpcServer({
    host: options.host,
    port: options.port,
    maxFrameBytes: options.maxFrameBytes ?? 64 * 1024 * 1024,
    // Long polls wait up to 30 s; the client's heartbeats keep a waiting connection alive.
    idleTimeoutMs: 60_000,
    drainTimeoutMs: 5000,
    logger,
  });
  rpc.addService(MqBinary, {
    send: async (x: TopicCall, _ctx, call) =>
      sendMessages(broker(), await callerOf(x, call.remote), x.topic, checkSend(x.body)),
    receive: async (x: GroupCall, _ctx, call) =>
      receiveMessages(
        broker(),
        await callerOf(x, call.remote),
        x.group,
        checkReceive(x.body),
        call.signal,
      ),
    ack: async (x: GroupCall, _ctx, call) =>
      ackMessages(broker(), await callerOf(x, call.remote), x.group, checkAck(x.body)),
    nack: async (x: GroupCall, _ctx, call) =>
      nackMessages(broker(), await callerOf(x, call.remote), x.group, checkNack(x.body)),
  });
  const { port } = await rpc.start();
  logger.info({ host: options.host, port }, 'mq binary data path listening');
  if (!/^(127\.|::1$|localhost$)/.test(options.host)) {
    logger.warn(
      { host: options.host, port },
      'the mq binary data path listens beyond this machine without TLS: credentials and messages cross the network in clear (an HTTPS control plane sends its clients to HTTPS instead)',
    );
  }
  return { host: options.host, port, close: () => rpc.stop() };
}
