import { useEffect, useState } from 'react';
import type { NodeEvent, NodeStatus, StatusSource } from '../../engine/node/status.js';

/** At most four screen updates a second: a busy node emits far more often than anyone can read. */
export const statusRenderIntervalMs = 250;
/** Events kept for the log: more than the tallest terminal shows, bounded however long it runs. */
export const dashboardEventsMax = 500;

export interface NodeStatusState {
  /** Undefined until the node's first status arrives. */
  readonly status: NodeStatus | undefined;
  /** Oldest first, at most `dashboardEventsMax`. */
  readonly events: readonly NodeEvent[];
}

export interface UseNodeStatusInit {
  /** Minimum time between two renders caused by the source. */
  readonly intervalMs?: number;
  readonly eventsMax?: number;
}

/**
 * The latest status and recent events of `source`, re-rendering at most once per `intervalMs`
 * however often the source emits. Updates are collected in the listener and published from a timer,
 * never from inside the source's own call, so drawing the screen never runs on the node's call path.
 */
export function useNodeStatus(source: StatusSource, init: UseNodeStatusInit = {}): NodeStatusState {
  const intervalMs = init.intervalMs ?? statusRenderIntervalMs;
  const eventsMax = init.eventsMax ?? dashboardEventsMax;
  const [state, setState] = useState<NodeStatusState>(() => ({
    status: source.current(),
    events: newest(source.recentEvents(), eventsMax),
  }));

  useEffect(() => {
    // Read again when subscribing: anything that happened between the first render and now is in
    // these, and everything after reaches the listener.
    let status = source.current();
    let events: NodeEvent[] = newest(source.recentEvents(), eventsMax);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastPublished = Number.NEGATIVE_INFINITY;

    const publish = () => {
      timer = undefined;
      lastPublished = performance.now();
      if (events.length > eventsMax) events = events.slice(events.length - eventsMax);
      setState({ status, events: events.slice() });
    };
    const schedule = () => {
      if (timer !== undefined) return;
      timer = setTimeout(publish, Math.max(0, lastPublished + intervalMs - performance.now()));
    };

    const unsubscribe = source.subscribe((next, newEvents) => {
      status = next;
      if (newEvents.length > 0) {
        events.push(...newEvents.slice(Math.max(0, newEvents.length - eventsMax)));
        // Trim now and then rather than on every event; the copy happens at most once per publish.
        if (events.length > 2 * eventsMax) events = events.slice(events.length - eventsMax);
      }
      schedule();
    });
    schedule();
    return () => {
      unsubscribe();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [source, intervalMs, eventsMax]);

  return state;
}

function newest(events: readonly NodeEvent[], max: number): NodeEvent[] {
  return events.slice(Math.max(0, events.length - max));
}
