/**
 * The transaction coordinator's routes under `/api/v1/txn`: services submit sagas and TCC
 * transactions and run two-phase messages (SDK routes with a `txn` grant; a message also
 * needs the `produce` grant of its topic, as the broker's send path does; a `txn:<service>`
 * grant bounds the services the branches call; a transaction is its submitting app's: the
 * coordinator refuses another app's submit, abort or reuse of its gid);
 * operators list, show, retry and stop global transactions (`peak txn`). The module's
 * coordinator starts its lease renewer and recovery loop when the node is ready.
 */
import { type Static, Type } from '@sinclair/typebox';
import { z } from 'zod';
import { urlPrefixes } from '../../core/url-allow-list.js';
import { RpcClient } from '../../rpc/rpc-client.js';
import { defineService, type ServiceImplementation } from '../../rpc/service-definition.js';
import { authorizeCaller, callerApp, scopeResource } from '../../server/access.js';
import { bodyCheck } from '../../server/control-plane-rpc.js';
import type { ApiModule, Caller } from '../../server/http-api.js';
import { StringEnum, WithDefault } from '../../server/route-schema.js';
import { type MsgSpec, type SagaSpec, type TccSpec, TXN_RPC_SERVICE } from '../txn-types.js';
import { type BranchCaller, RpcBranchCaller, TransportBranchCaller } from './branch-caller.js';
import { COORDINATOR_APP, CoordinatorIdentity } from './coordinator-identity.js';
import { HttpBranchCaller } from './http-branch-caller.js';
import { type InstanceLister, PolledRegistry } from './polled-registry.js';
import { TxnCoordinator } from './txn-coordinator.js';
import { getGlobal, listGlobals, retryGlobal, stopGlobal } from './txn-store.js';

const base = '/api/v1/txn';
const Name = Type.String({
  pattern: '^[A-Za-z0-9_.-]{1,64}$',
  takes: '1-64 letters, digits or _ . -',
});
const Gid = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,128}$',
  takes: '1-128 letters, digits or _ . : -',
});
// An RPC method (service and method) or an HTTP endpoint (url): the coordinator checks that
// exactly one is named and that a URL is under a prefix the server allows (so the bodies are
// handed to it as its spec types once that check is its own).
const Call = Type.Object(
  {
    service: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'service key group/name:version (an RPC branch)',
      }),
    ),
    method: Type.Optional(
      Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$', takes: 'a method name' }),
    ),
    url: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2048,
        description: 'an http(s) URL the coordinator POSTs to (an HTTP branch)',
      }),
    ),
  },
  { additionalProperties: false },
);
const Policy = {
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  retryDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
};
const Step = Type.Object(
  {
    name: Name,
    action: Call,
    compensate: Type.Optional(Call),
    payload: Type.Optional(Type.Unknown()),
    after: Type.Optional(Type.Array(Name, { maxItems: 64 })),
    ...Policy,
  },
  { additionalProperties: false },
);
const Branch = Type.Object(
  {
    name: Name,
    try: Call,
    confirm: Call,
    cancel: Call,
    payload: Type.Optional(Type.Unknown()),
    ...Policy,
  },
  { additionalProperties: false },
);
const Timeout = Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 }));
const Wait = WithDefault(
  Type.Boolean({ description: 'answer at the end (true) or once held (false)' }),
  true,
);
/** A saga submit (HTTP `POST /api/v1/txn/sagas`, or `peak.txn.saga` on the RPC port). */
const sagaBody = Type.Object(
  {
    gid: Type.Optional(Gid),
    steps: Type.Array(Step, { minItems: 1, maxItems: 64 }),
    concurrent: Type.Optional(Type.Boolean()),
    timeoutMs: Timeout,
    wait: Wait,
  },
  { additionalProperties: false },
);
/** A TCC submit (HTTP `POST /api/v1/txn/tccs`, or `peak.txn.tcc` on the RPC port). */
const tccBody = Type.Object(
  {
    gid: Type.Optional(Gid),
    branches: Type.Array(Branch, { minItems: 1, maxItems: 64 }),
    timeoutMs: Timeout,
    wait: Wait,
  },
  { additionalProperties: false },
);
/** A two-phase message to prepare. */
const msgBody = Type.Object(
  {
    gid: Type.Optional(Gid),
    topic: Type.String({ minLength: 1, maxLength: 200 }),
    message: Type.Object(
      {
        body: Type.String({ maxLength: 4 * 1024 * 1024 }),
        tag: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        keys: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 32 }),
        ),
        group: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        properties: Type.Optional(Type.Record(Type.String(), Type.String())),
      },
      { additionalProperties: false },
    ),
    check: Call,
    checkAfterMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 86_400_000 })),
  },
  { additionalProperties: false },
);
const gidParams = Type.Object({ gid: Gid });
const NoBody = Type.Object({}, { additionalProperties: false });
/** Resuming or stopping a transaction is operations: the operator role. */
const operator = { auth: 'operator' as const };

/**
 * The service names of the RPC branch calls among `calls` (from their keys,
 * `group/name:version`), as `txn:<service>` grants name them. HTTP branches are bounded by
 * the server's URL prefixes instead (txn.httpBranches), which the coordinator checks.
 */
function serviceNames(calls: { service?: string | undefined }[]): string[] {
  return calls.flatMap((c) =>
    c.service === undefined ? [] : [/^[^/]*\/(.+):[^:/]*$/.exec(c.service)?.[1] ?? c.service],
  );
}

/** The app a caller is (undefined for an operator token). */
function appOf(caller: Caller | undefined): string | undefined {
  return caller?.kind === 'app' ? caller.app : undefined;
}

const [txnService, txnVersion] = TXN_RPC_SERVICE.split(':') as [string, string];
const submitCall = z.object({
  token: z.string().max(4096).optional(),
  body: z.record(z.string(), z.unknown()),
});
/** `peak.txn` on the RPC port: the envelope is checked here, the body by the route's schema. */
const TxnRpc = defineService({
  name: txnService,
  version: txnVersion,
  methods: {
    saga: { input: submitCall, output: z.unknown() },
    tcc: { input: submitCall, output: z.unknown() },
    // A two-phase message's three calls (body: the message; `{ gid }` for submit and abort).
    msgPrepare: { input: submitCall, output: z.unknown() },
    msgSubmit: { input: submitCall, output: z.unknown() },
    msgAbort: { input: submitCall, output: z.unknown() },
  },
});

/** What the txn module needs from the host: the registry's instance reader. */
export interface TxnRouteDeps {
  instances: InstanceLister;
  /** Replaces the RPC caller of branches (tests). */
  caller?: BranchCaller;
}

/** The txn module's routes and its coordinator. */
export function txnRoutes(deps: TxnRouteDeps): ApiModule {
  return (app, ctx) => {
    const logger = ctx.logger.child({ component: 'txn' });
    const registry = new PolledRegistry(ctx.pool, deps.instances, logger);
    // Branch calls carry the coordinator's own signed identity, for providers that require one.
    const identity =
      ctx.issueIdentity === undefined
        ? undefined
        : new CoordinatorIdentity(ctx.issueIdentity, logger);
    const rpc = new RpcClient({
      registry,
      app: COORDINATOR_APP,
      logger,
      ...(identity === undefined ? {} : { identity }),
    });
    // HTTP branches only under the prefixes the operator allowed (checked at submit and at call).
    const httpBranches = urlPrefixes(ctx.settings.txn.httpBranches);
    const coordinator = new TxnCoordinator({
      pool: ctx.pool,
      nodeId: ctx.nodeId,
      logger,
      caller:
        deps.caller ??
        new TransportBranchCaller(
          new RpcBranchCaller(rpc),
          new HttpBranchCaller({
            prefixes: httpBranches,
            ...(identity === undefined ? {} : { identity: () => identity.current() }),
          }),
        ),
      httpBranches,
      leaseMs: ctx.settings.txn.leaseMs,
      recoveryIntervalMs: ctx.settings.txn.recoveryIntervalMs,
      maxRecoveries: ctx.settings.txn.maxRecoveries,
      retentionMs: ctx.settings.txn.retentionMs,
      recovery: true,
    });
    /** A saga submit, the same whichever way it came: the caller's grants bound its services. */
    const submitSaga = (caller: Caller | undefined, body: Static<typeof sagaBody>) => {
      const { wait, ...spec } = body;
      // The coordinator calls these services for the app: its `txn:<service>` grants bound them.
      for (const s of serviceNames(
        spec.steps.flatMap((s) => [s.action, ...(s.compensate ? [s.compensate] : [])]),
      ))
        authorizeCaller(caller, 'txn', s);
      return coordinator.submitSaga(spec as SagaSpec, wait, appOf(caller));
    };
    /** A TCC submit, the same whichever way it came. */
    const submitTcc = (caller: Caller | undefined, body: Static<typeof tccBody>) => {
      const { wait, ...spec } = body;
      for (const s of serviceNames(spec.branches.flatMap((b) => [b.try, b.confirm, b.cancel])))
        authorizeCaller(caller, 'txn', s);
      return coordinator.submitTcc(spec as TccSpec, wait, appOf(caller));
    };
    /** A message's prepare: it reaches its topic as a send would, so it needs the same grant. */
    const prepareMsg = (caller: Caller | undefined, body: Static<typeof msgBody>) => {
      authorizeCaller(caller, 'produce', scopeResource('produce', body.topic));
      for (const s of serviceNames([body.check])) authorizeCaller(caller, 'txn', s);
      return coordinator.prepareMsg(body as MsgSpec, appOf(caller));
    };
    const abortMsg = (caller: Caller | undefined, gid: string) =>
      coordinator.abortMsg(gid, 'its local transaction rolled back', appOf(caller));
    // The SDK's submits on the node's RPC port (the host opens it once the node is ready).
    if (ctx.rpc !== undefined) {
      const rpcPort = ctx.rpc;
      const checkSaga = bodyCheck<Static<typeof sagaBody>>(sagaBody);
      const checkTcc = bodyCheck<Static<typeof tccBody>>(tccBody);
      const checkMsg = bodyCheck<Static<typeof msgBody>>(msgBody);
      const checkGid = bodyCheck<Static<typeof gidParams>>(gidParams);
      const impl: ServiceImplementation<typeof TxnRpc> = {
        saga: async (x, _ctx, call) =>
          submitSaga(await rpcPort.caller(x.token, call.remote, 'txn'), checkSaga(x.body)),
        tcc: async (x, _ctx, call) =>
          submitTcc(await rpcPort.caller(x.token, call.remote, 'txn'), checkTcc(x.body)),
        msgPrepare: async (x, _ctx, call) =>
          prepareMsg(await rpcPort.caller(x.token, call.remote, 'txn'), checkMsg(x.body)),
        msgSubmit: async (x, _ctx, call) => {
          const caller = await rpcPort.caller(x.token, call.remote, 'txn');
          return coordinator.submitMsg(checkGid(x.body).gid, appOf(caller));
        },
        msgAbort: async (x, _ctx, call) =>
          abortMsg(await rpcPort.caller(x.token, call.remote, 'txn'), checkGid(x.body).gid),
      };
      rpcPort.addService(TxnRpc, impl);
    }
    app.addHook('onReady', async () => {
      await identity?.start();
      coordinator.start();
    });
    app.addHook('preClose', async () => {
      coordinator.stop();
    });
    app.addHook('onClose', async () => {
      identity?.close();
      await rpc.close();
      await registry.close();
    });

    app.post(
      `${base}/sagas`,
      {
        config: { auth: 'sdk', scope: 'txn' },
        schema: {
          summary: 'Run a saga: actions in order (or by dependencies), compensations on failure',
          body: sagaBody,
        },
      },
      async (request) => submitSaga(request.caller, request.body),
    );
    app.post(
      `${base}/tccs`,
      {
        config: { auth: 'sdk', scope: 'txn' },
        schema: {
          summary: 'Run a TCC transaction: every try, then every confirm or every cancel',
          body: tccBody,
        },
      },
      async (request) => submitTcc(request.caller, request.body),
    );
    app.post(
      `${base}/msgs`,
      {
        config: { auth: 'sdk', scope: 'txn' },
        schema: {
          summary: 'Prepare a two-phase message (published when its local transaction commits)',
          body: msgBody,
        },
      },
      async (request) => prepareMsg(request.caller, request.body),
    );
    app.post(
      `${base}/msgs/:gid/submit`,
      {
        config: { auth: 'sdk', scope: 'txn' },
        schema: {
          summary: 'Its local transaction committed: publish the message',
          params: gidParams,
          body: NoBody,
        },
      },
      async (request) => coordinator.submitMsg(request.params.gid, callerApp(request)),
    );
    app.post(
      `${base}/msgs/:gid/abort`,
      {
        config: { auth: 'sdk', scope: 'txn' },
        schema: {
          summary: 'Its local transaction rolled back: drop the message',
          params: gidParams,
          body: NoBody,
        },
      },
      async (request) => abortMsg(request.caller, request.params.gid),
    );

    app.get(
      `${base}/globals`,
      {
        schema: {
          summary: 'The newest global transactions (peak txn ls)',
          querystring: Type.Object({
            status: Type.Optional(
              StringEnum([
                'active',
                'prepared',
                'running',
                'committing',
                'aborting',
                'succeeded',
                'failed',
              ]),
            ),
            kind: Type.Optional(StringEnum(['saga', 'tcc', 'msg'])),
            limit: WithDefault(Type.Integer({ minimum: 1, maximum: 1000 }), 50),
          }),
        },
      },
      async (request) => ({ globals: await listGlobals(ctx.pool, request.query) }),
    );
    app.get(
      `${base}/globals/:gid`,
      {
        schema: {
          summary: 'One global transaction with its branch timeline (peak txn show)',
          params: gidParams,
        },
      },
      async (request) => getGlobal(ctx.pool, request.params.gid),
    );
    app.post(
      `${base}/globals/:gid/retry`,
      {
        config: operator,
        schema: {
          summary: 'Resume an unfinished (or parked) global transaction at once',
          params: gidParams,
          body: NoBody,
        },
      },
      async (request) => retryGlobal(ctx.pool, request.params.gid),
    );
    app.post(
      `${base}/globals/:gid/stop`,
      {
        config: operator,
        schema: {
          summary: 'Force-stop a running saga or TCC: its compensations or cancels run',
          params: gidParams,
          body: NoBody,
        },
      },
      async (request) =>
        stopGlobal(ctx.pool, request.params.gid, request.caller?.who ?? 'an operator'),
    );
    app.get(
      `${base}/coordinator`,
      { schema: { summary: "This node's coordinator: how many transactions it drives" } },
      async () => ({ nodeId: ctx.nodeId, driving: coordinator.driving }),
    );
  };
}
