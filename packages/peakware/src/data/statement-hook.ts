/**
 * The statement seam: a hook run before each logical statement (after routing, before any
 * physical statement is sent), with its route plan. It may wait (a slow statement) or throw
 * (a failing one); fault drills plug in here (`peakware/drill`'s `sqlFaultHook`) without
 * the data layer knowing them. Absent, it costs one property check per statement.
 */
import type { RoutePlan } from './route-plan.js';

/** Runs before a routed statement; throw to fail it, resolve to let it run. */
export type StatementHook = (plan: RoutePlan) => Promise<void> | void;
