/**
 * A Kubernetes HorizontalPodAutoscaler (autoscaling/v2) from a scaling policy, for teams
 * that let Kubernetes scale instead of the supervisor (`peak scale hpa`). The policy's
 * bounds, step, cooldown and windows become the HPA's `minReplicas`, `maxReplicas` and
 * `behavior`; its metric becomes:
 *
 * | policy metric | HPA metric |
 * |---|---|
 * | `cpu` | `Resource` cpu, `averageUtilization` = target (% of the container's CPU request: equal to Peakware's % of one core when the request is 1 core) |
 * | `qps` | `Pods` `peak_window_qps` (the service's `/metrics`, through a Prometheus adapter), `averageValue` = target |
 * | `rt-p99` | `Pods` `peak_window_rt_p99_seconds`, `averageValue` = target / 1000 |
 * | `mq-backlog` | `External` `peak_mq_backlog_messages{group,topic}` (peak server's `/metrics`), `averageValue` = target |
 */
import { resolvePolicy, type ScalePolicy } from './scale-policy.js';

/** Where the HPA points. */
export interface HpaTarget {
  /** The Deployment to scale. */
  deployment: string;
  /** Its namespace. Default `default`. */
  namespace?: string;
  /** The HPA's name. Default the deployment's. */
  name?: string;
}

function metricBlock(p: ReturnType<typeof resolvePolicy>): string[] {
  switch (p.metric) {
    case 'cpu':
      return [
        '    - type: Resource',
        '      resource:',
        '        name: cpu',
        '        target:',
        '          type: Utilization',
        `          averageUtilization: ${Math.round(p.target)}`,
      ];
    case 'qps':
    case 'rt-p99':
      return [
        '    - type: Pods',
        '      pods:',
        '        metric:',
        `          name: ${p.metric === 'qps' ? 'peak_window_qps' : 'peak_window_rt_p99_seconds'}`,
        ...(p.resource === undefined
          ? []
          : [
              '          selector:',
              '            matchLabels:',
              `              resource: "${p.resource}"`,
            ]),
        '        target:',
        '          type: AverageValue',
        `          averageValue: "${p.metric === 'qps' ? p.target : p.target / 1000}"`,
      ];
    case 'mq-backlog':
      return [
        '    - type: External',
        '      external:',
        '        metric:',
        '          name: peak_mq_backlog_messages',
        '          selector:',
        '            matchLabels:',
        `              group: "${p.mq?.group ?? ''}"`,
        `              topic: "${p.mq?.topic ?? ''}"`,
        '        target:',
        '          type: AverageValue',
        `          averageValue: "${p.target}"`,
      ];
  }
}

function behavior(windowMs: number, step: number, cooldownMs: number): string[] {
  return [
    `      stabilizationWindowSeconds: ${Math.round(windowMs / 1000)}`,
    '      policies:',
    '        - type: Pods',
    `          value: ${step}`,
    `          periodSeconds: ${Math.max(1, Math.round(cooldownMs / 1000))}`,
  ];
}

/** The HPA manifest (YAML) of a policy (check the policy first). */
export function hpaManifest(policy: ScalePolicy, target: HpaTarget): string {
  const p = resolvePolicy(policy);
  return [
    'apiVersion: autoscaling/v2',
    'kind: HorizontalPodAutoscaler',
    'metadata:',
    `  name: ${target.name ?? target.deployment}`,
    `  namespace: ${target.namespace ?? 'default'}`,
    'spec:',
    '  scaleTargetRef:',
    '    apiVersion: apps/v1',
    '    kind: Deployment',
    `    name: ${target.deployment}`,
    `  minReplicas: ${Math.max(1, p.min)}`,
    `  maxReplicas: ${p.max}`,
    '  metrics:',
    ...metricBlock(p),
    '  behavior:',
    '    scaleUp:',
    ...behavior(p.scaleUpWindowMs, p.step, p.cooldownMs),
    '    scaleDown:',
    ...behavior(p.scaleDownWindowMs, p.step, p.cooldownMs),
    '',
  ].join('\n');
}
