/**
 * Topology: the call graph of the last minutes with calls, errors and p99 per edge, real and
 * stress traffic apart. Laid out in layers (callers left of callees, by longest call depth,
 * each layer ordered by its callers' places) and drawn as one SVG: 500 services and their
 * edges lay out and draw in a few tens of ms.
 */
import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { TopologyEdge } from '../../../admin/telemetry-admin.js';
import { api } from '../api.js';
import { useLoad } from '../hooks.js';
import { Badge, Card, ErrorBox, ms, num, Table, Tabs } from '../ui.js';

const NODE_W = 150;
const NODE_H = 26;
const GAP_X = 90;
const GAP_Y = 12;
/** Most edges listed in the table under the graph (the busiest). */
const EDGE_ROWS = 200;

/** Where each service goes: x by call depth, y by order in its layer. */
export function layout(services: readonly string[], edges: readonly TopologyEdge[]) {
  const out = new Map<string, string[]>();
  const incoming = new Map<string, number>();
  for (const s of services) {
    out.set(s, []);
    incoming.set(s, 0);
  }
  for (const e of edges) {
    if (e.caller === e.callee || !out.has(e.caller) || !out.has(e.callee)) continue;
    out.get(e.caller)!.push(e.callee);
    incoming.set(e.callee, incoming.get(e.callee)! + 1);
  }
  // Longest depth by Kahn's order; a cycle's members keep the depth they reached.
  const depth = new Map<string, number>(services.map((s) => [s, 0]));
  const left = new Map(incoming);
  const queue = services.filter((s) => left.get(s) === 0);
  for (let i = 0; i < queue.length; i++) {
    const s = queue[i]!;
    for (const c of out.get(s)!) {
      depth.set(c, Math.max(depth.get(c)!, depth.get(s)! + 1));
      left.set(c, left.get(c)! - 1);
      if (left.get(c) === 0) queue.push(c);
    }
  }
  const layers: string[][] = [];
  for (const s of services) {
    const d = depth.get(s)!;
    layers[d] = [...(layers[d] ?? []), s];
  }
  const y = new Map<string, number>();
  const callers = new Map<string, string[]>();
  for (const [s, cs] of out) {
    for (const c of cs) {
      const list = callers.get(c);
      if (list === undefined) callers.set(c, [s]);
      else list.push(s);
    }
  }
  const pos = new Map<string, { x: number; y: number }>();
  layers.forEach((layer, li) => {
    const score = (s: string) => {
      const ps = (callers.get(s) ?? []).map((p) => y.get(p)).filter((v) => v !== undefined);
      return ps.length === 0 ? Number.MAX_SAFE_INTEGER : ps.reduce((a, b) => a + b, 0) / ps.length;
    };
    const ordered = [...layer].sort((a, b) => score(a) - score(b) || a.localeCompare(b));
    ordered.forEach((s, i) => {
      y.set(s, i);
      pos.set(s, { x: 10 + li * (NODE_W + GAP_X), y: 10 + i * (NODE_H + GAP_Y) });
    });
  });
  const height = Math.max(...layers.map((l) => l.length), 1) * (NODE_H + GAP_Y) + 20;
  const width = layers.length * (NODE_W + GAP_X) + 20;
  return { pos, width, height };
}

function errorRate(e: TopologyEdge): number {
  return e.calls === 0 ? 0 : e.errors / e.calls;
}

function Graph(props: { services: string[]; edges: TopologyEdge[] }) {
  const started = performance.now();
  const { pos, width, height } = useMemo(
    () => layout(props.services, props.edges),
    [props.services, props.edges],
  );
  const svg = useRef<SVGSVGElement>(null);
  useLayoutEffect(() => {
    svg.current?.setAttribute('data-render-ms', (performance.now() - started).toFixed(1));
  });
  const maxQps = Math.max(1, ...props.edges.map((e) => e.qps));
  return (
    <div class="topology">
      <svg
        ref={svg}
        width={width}
        height={height}
        data-testid="topology-graph"
        data-nodes={props.services.length}
        role="img"
        aria-label="call graph"
      >
        <title>call graph</title>
        {props.edges.map((e) => {
          const a = pos.get(e.caller);
          const b = pos.get(e.callee);
          if (a === undefined || b === undefined) return null;
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x;
          const y2 = b.y + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          const bad = errorRate(e) > 0.01;
          return (
            <path
              key={`${e.caller}>${e.callee}>${e.stress}`}
              class={`edge ${e.stress ? 'stress' : ''} ${bad ? 'bad' : ''}`}
              d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
              stroke-width={1 + (3 * e.qps) / maxQps}
            >
              <title>
                {`${e.caller} → ${e.callee}${e.stress ? ' (stress)' : ''}: ${e.calls} calls, ${e.errors} errors, ${num(e.qps)}/s, p99 ${ms(e.rtP99Ms)}`}
              </title>
            </path>
          );
        })}
        {props.services.map((s) => {
          const p = pos.get(s)!;
          return (
            <g key={s} transform={`translate(${p.x},${p.y})`} class="node">
              <rect width={NODE_W} height={NODE_H} rx={5} />
              <text x={8} y={17}>
                {s.length > 20 ? `${s.slice(0, 19)}…` : s}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

export function TopologyPage() {
  const [minutes, setMinutes] = useState('15');
  const [show, setShow] = useState('all');
  const topo = useLoad(
    () => api.telemetry.topology({ sinceMinutes: Number(minutes) }),
    [minutes],
    10_000,
  );
  const { edges, services } = useMemo(() => {
    const edges = (topo.data?.edges ?? []).filter(
      (e) => show === 'all' || (show === 'stress') === e.stress,
    );
    const set = new Set<string>();
    for (const e of edges) {
      set.add(e.caller);
      set.add(e.callee);
    }
    return { edges, services: [...set].sort() };
  }, [topo.data, show]);
  const busiest = useMemo(
    () => [...edges].sort((a, b) => b.calls - a.calls).slice(0, EDGE_ROWS),
    [edges],
  );
  return (
    <div class="grid">
      <Card
        wide
        title={`Call graph: ${services.length} services, ${edges.length} edges`}
        actions={
          <>
            <Tabs
              tabs={[
                { id: 'all', title: 'All' },
                { id: 'real', title: 'Real' },
                { id: 'stress', title: 'Stress' },
              ]}
              active={show}
              onChange={setShow}
            />
            <Tabs
              tabs={[
                { id: '5', title: '5 min' },
                { id: '15', title: '15 min' },
                { id: '60', title: '1 hour' },
              ]}
              active={minutes}
              onChange={setMinutes}
            />
          </>
        }
      >
        <ErrorBox error={topo.error} />
        {edges.length === 0 ? (
          <p class="empty">No calls traced in this period.</p>
        ) : (
          <Graph services={services} edges={edges} />
        )}
        <p class="muted small">
          Edge width: calls/s; red: over 1 % errors; dashed orange: stress traffic.
        </p>
      </Card>
      <Card
        wide
        title={
          edges.length > EDGE_ROWS
            ? `Edges: the ${EDGE_ROWS} busiest of ${edges.length}`
            : `Edges (${edges.length})`
        }
      >
        <Table
          testId="edges"
          rows={busiest}
          rowKey={(e) => `${e.caller}>${e.callee}>${e.stress}`}
          columns={[
            { title: 'caller', cell: (e) => e.caller },
            { title: 'callee', cell: (e) => e.callee },
            {
              title: 'traffic',
              cell: (e) => (e.stress ? <Badge tone="stress">stress</Badge> : 'real'),
            },
            { title: 'calls', cell: (e) => num(e.calls), align: 'right' },
            { title: 'errors', cell: (e) => num(e.errors), align: 'right' },
            { title: 'calls/s', cell: (e) => num(e.qps), align: 'right' },
            { title: 'RT avg', cell: (e) => ms(e.rtAvgMs), align: 'right' },
            { title: 'p99', cell: (e) => ms(e.rtP99Ms), align: 'right' },
          ]}
        />
      </Card>
    </div>
  );
}
