/**
 * The console's pages, in menu order. A new subsystem adds its page here: one entry with its
 * component.
 */
import type { FunctionComponent } from 'preact';
import { AlertsPage } from './pages/alerts.js';
import { AuditPage } from './pages/audit.js';
import { ConfigPage } from './pages/config.js';
import { DataPage } from './pages/data.js';
import { DrillsPage, PlansPage } from './pages/drills.js';
import { GatewayPage } from './pages/gateway.js';
import { GuardPage } from './pages/guard.js';
import { MqPage } from './pages/mq.js';
import { OverviewPage } from './pages/overview.js';
import { ServicesPage } from './pages/services.js';
import { CapacityPage, StressPage } from './pages/stress.js';
import { TopologyPage } from './pages/topology.js';
import { TracesPage } from './pages/traces.js';
import { TransactionsPage } from './pages/transactions.js';

/** One page of the menu. */
export interface PageEntry {
  /** Its path under /console. */
  id: string;
  title: string;
  component: FunctionComponent;
}

/** Every page, in menu order. */
export const PAGES: readonly PageEntry[] = [
  { id: 'overview', title: 'Overview', component: OverviewPage },
  { id: 'topology', title: 'Topology', component: TopologyPage },
  { id: 'traces', title: 'Traces', component: TracesPage },
  { id: 'services', title: 'Services', component: ServicesPage },
  { id: 'config', title: 'Config', component: ConfigPage },
  { id: 'guard', title: 'Guard', component: GuardPage },
  { id: 'mq', title: 'MQ', component: MqPage },
  { id: 'data', title: 'Data', component: DataPage },
  { id: 'alerts', title: 'Alerts', component: AlertsPage },
  { id: 'audit', title: 'Audit', component: AuditPage },
  { id: 'stress', title: 'Stress runs', component: StressPage },
  { id: 'capacity', title: 'Capacity', component: CapacityPage },
  { id: 'drills', title: 'Drills', component: DrillsPage },
  { id: 'plans', title: 'Plans', component: PlansPage },
  { id: 'transactions', title: 'Transactions', component: TransactionsPage },
  { id: 'gateway', title: 'Gateway apps', component: GatewayPage },
];
