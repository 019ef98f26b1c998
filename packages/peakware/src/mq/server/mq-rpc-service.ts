/**
 * The broker's service on the node's RPC port (`peak.mq`: send, receive, ack, nack; the host's
 * control-plane-rpc.ts has the port, binary-protocol.ts the contract). It is the HTTP routes'
 * hot path over the RPC framing, not a second API: every call's credential is checked as
 * HTTP checks a bearer token, its body against the HTTP route's schema (mq-schemas.ts) with
 * the same words, and data-plane.ts makes the resource check and calls the broker, as the
 * routes do. A long poll whose connection closes ends at once (the call's signal), so it
 * claims nothing for a consumer that is gone.
 */
import { z } from 'zod';
import { defineService, type ServiceImplementation } from '../../rpc/index.js';
import { bodyCheck, type ControlPlaneRpc } from '../../server/control-plane-rpc.js';
import { MQ_RPC_SERVICE } from '../binary-protocol.js';
import type { Broker } from './broker.js';
import {
  ackMessages,
  type DataPlaneCaller,
  nackMessages,
  receiveMessages,
  sendMessages,
} from './data-plane.js';
import { ackBody, nackBody, receiveBody, sendBody } from './mq-schemas.js';

const name = z.string().min(1).max(256);
const credentials = {
  token: z.string().max(4096).optional(),
  secret: z.string().max(4096).optional(),
  body: z.record(z.string(), z.unknown()),
};
const topicCall = z.object({ topic: name, ...credentials });
const groupCall = z.object({ group: name, ...credentials });

const [service, version] = MQ_RPC_SERVICE.split(':') as [string, string];
const answer = z.unknown();
/** `peak.mq`: the envelope is checked here, the body by the HTTP route's schema. */
const MqRpc = defineService({
  name: service,
  version,
  methods: {
    send: { input: topicCall, output: answer },
    receive: { input: groupCall, output: answer },
    ack: { input: groupCall, output: answer, idempotent: true },
    nack: { input: groupCall, output: answer },
  },
});

const checkSend = bodyCheck<Parameters<typeof sendMessages>[3]>(sendBody);
const checkReceive = bodyCheck<Parameters<typeof receiveMessages>[3]>(receiveBody);
const checkAck = bodyCheck<Parameters<typeof ackMessages>[3]>(ackBody);
const checkNack = bodyCheck<Parameters<typeof nackMessages>[3]>(nackBody);

/** Hosts `peak.mq` on `rpc` for `broker()` (the broker of the moment: it starts with the node). */
export function addMqRpcService(rpc: ControlPlaneRpc, broker: () => Broker): void {
  const caller = async (
    x: { token?: string | undefined; secret?: string | undefined },
    remote: string | undefined,
    scope: 'produce' | 'consume',
  ): Promise<DataPlaneCaller> => ({
    caller: await rpc.caller(x.token, remote, scope),
    secret: x.secret,
  });
  const impl: ServiceImplementation<typeof MqRpc> = {
    send: async (x, _ctx, call) =>
      sendMessages(broker(), await caller(x, call.remote, 'produce'), x.topic, checkSend(x.body)),
    receive: async (x, _ctx, call) =>
      receiveMessages(
        broker(),
        await caller(x, call.remote, 'consume'),
        x.group,
        checkReceive(x.body),
        call.signal,
      ),
    ack: async (x, _ctx, call) =>
      ackMessages(broker(), await caller(x, call.remote, 'consume'), x.group, checkAck(x.body)),
    nack: async (x, _ctx, call) =>
      nackMessages(broker(), await caller(x, call.remote, 'consume'), x.group, checkNack(x.body)),
  };
  rpc.addService(MqRpc, impl);
}
