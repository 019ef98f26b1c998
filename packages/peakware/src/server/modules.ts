/**
 * The subsystems `peak server` hosts, in registration order. This file is the host's only
 * import of subsystem code: everything else in `src/server/` is the host's own (start-up,
 * embedded PostgreSQL, pool, migrator, HTTP core, leader locks). It is also where one
 * subsystem's capability is handed to another that must not import it: telemetry (a lower
 * layer) reads mq's consumer backlog through mq's `openBacklogReader`, and the console
 * reads telemetry's pushed metrics through telemetry's `openMetricBuckets`, the drill
 * module writes faults and plans through the config center's store (`configStorePort`), and
 * stress reads a run's messages in real topics through mq's `openStressMessageCounter`, and
 * scale reads policies and writes weights through the config store, the weights in force
 * through the registry's `listAll` (and tags a release's gray instances with its
 * `patchInstance`), figures through
 * telemetry's `openMetricBuckets` and backlogs through mq's `openBacklogReader`, all passed
 * in here.
 */
import { configModule, configStorePort } from '../config/server/index.js';
import { consoleModule } from '../console/server/index.js';
import { drillModule } from '../drill/server/index.js';
import { gatewayModule } from '../gateway/server/index.js';
import { guardModule } from '../guard/server/index.js';
import { mqModule, openBacklogReader, openStressMessageCounter } from '../mq/server/index.js';
import { listAll, listInstances, patchInstance, registryModule } from '../registry/server/index.js';
import { ControlPlaneRpcServer } from '../rpc/server/index.js';
import { scaleModule } from '../scale/server/index.js';
import { stressModule } from '../stress/server/index.js';
import { openMetricBuckets, telemetryModule } from '../telemetry/server/index.js';
import { txnModule } from '../txn/server/index.js';
import type { PeakModule } from './peak-module.js';

/** Every built-in module; the host registers their routes in this order. */
export const builtinModules: readonly PeakModule[] = [
  registryModule,
  guardModule,
  mqModule,
  configModule,
  telemetryModule({ mqBacklog: openBacklogReader }),
  gatewayModule,
  consoleModule({ metrics: openMetricBuckets }),
  drillModule({ config: configStorePort }),
  stressModule({ messages: openStressMessageCounter }),
  txnModule({ instances: listInstances }),
  scaleModule({
    config: configStorePort,
    registered: listAll,
    retag: (pool, instanceId, tags) => patchInstance(pool, instanceId, undefined, { tags }),
    metrics: openMetricBuckets,
    backlog: openBacklogReader,
  }),
];

/** The node's RPC port for the SDK's hot calls (rpc's control-plane half; control-plane-rpc.ts). */
export { ControlPlaneRpcServer };
