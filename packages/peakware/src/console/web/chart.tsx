/**
 * A time-series chart on uPlot (canvas, ~50 KB, draws thousands of points in a few ms, so
 * a live chart redraws every second without a frame drop). Made once per chart; new data
 * is set in place.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** One line. */
export interface Line {
  label: string;
  values: (number | null)[];
  color: string;
  /** The right-hand axis (latencies beside rates). */
  right?: boolean;
}

/** A chart of lines over time (`t` in epoch ms). */
export function TimeChart(props: {
  t: number[];
  lines: Line[];
  height?: number;
  leftUnit?: string;
  rightUnit?: string;
  testId?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = props.lines.map((l) => `${l.label}/${l.right === true}`).join(',');

  useEffect(() => {
    const el = box.current!;
    const hasRight = props.lines.some((l) => l.right === true);
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height: props.height ?? 180,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { auto: true }, r: { auto: true } },
      axes: [
        { stroke: '#8a93a6', grid: { stroke: '#2a3142' } },
        {
          stroke: '#8a93a6',
          grid: { stroke: '#2a3142' },
          label: props.leftUnit ?? '',
          size: 56,
        },
        ...(hasRight
          ? [
              {
                scale: 'r',
                side: 1 as const,
                stroke: '#8a93a6',
                grid: { show: false },
                label: props.rightUnit ?? '',
                size: 56,
              },
            ]
          : []),
      ],
      series: [
        {},
        ...props.lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 1.5,
          scale: l.right === true ? 'r' : 'y',
          spanGaps: false,
          points: { show: false },
        })),
      ],
    };
    const u = new uPlot(opts, data(props.t, props.lines), el);
    plot.current = u;
    const resize = new ResizeObserver(() =>
      u.setSize({ width: el.clientWidth, height: opts.height }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data(props.t, props.lines));
  }, [props.t, props.lines]);

  return <div class="chart" ref={box} data-testid={props.testId} data-points={props.t.length} />;
}

function data(t: number[], lines: Line[]): uPlot.AlignedData {
  return [t.map((x) => x / 1000), ...lines.map((l) => l.values)] as uPlot.AlignedData;
}
