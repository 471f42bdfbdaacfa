import { useApp, useInput, useStdin } from 'ink';
import { useMemo, useRef, useState } from 'react';
import type { StatusSource } from '../../engine/node/status.js';
import { Dashboard, Waiting, type FooterView } from './components/dashboard.js';
import { quitKey, quitStep, type QuitPhase } from './quit.js';
import { useNodeStatus, type UseNodeStatusInit } from './use-node-status.js';
import { useTerminalSize } from './use-terminal-size.js';
import { toViewModel } from './view-model.js';

export interface DashboardAppProps {
  readonly source: StatusSource;
  /** The dashboard of `node start`: leaving stops the node, so it asks first. */
  readonly ownsNode: boolean;
  /** Runs when the operator leaves (after confirming, when owning the node); the app exits when it settles. */
  readonly onQuit: () => Promise<void>;
  readonly statusInit?: UseNodeStatusInit;
}

/**
 * Ink keeps redrawing in place only while its output is shorter than the terminal; at full height it
 * clears the whole screen on every frame, which flickers. One row stays free for the cursor.
 */
const cursorRows = 1;

/** The live dashboard: subscribes to the source, draws the view model, handles q / Ctrl-C / y / n. */
export function DashboardApp({ source, ownsNode, onQuit, statusInit }: DashboardAppProps) {
  const { exit } = useApp();
  const { isRawModeSupported } = useStdin();
  const { status, events } = useNodeStatus(source, statusInit);
  const terminal = useTerminalSize();
  const [phase, setPhase] = useState<QuitPhase>('watching');
  // The phase as of the last key, not the last render: keys arriving together (`qy` pasted, or typed
  // faster than a frame) each see the phase the one before left.
  const phaseNow = useRef<QuitPhase>('watching');

  useInput(
    (input, key) => {
      const step = quitStep(phaseNow.current, quitKey(input, key), ownsNode);
      phaseNow.current = step.phase;
      setPhase(step.phase);
      if (!step.leave) return;
      onQuit().then(
        () => exit(),
        (error: unknown) => exit(error instanceof Error ? error : new Error(String(error))),
      );
    },
    // Without a terminal on stdin there are no keys to read; the caller stops the dashboard instead.
    { isActive: isRawModeSupported === true },
  );

  const size = { columns: terminal.columns, rows: Math.max(0, terminal.rows - cursorRows) };
  const view = useMemo(
    () => (status === undefined ? undefined : toViewModel(status, events, size)),
    [status, events, size.columns, size.rows],
  );
  const footer = footerFor(phase, ownsNode, isRawModeSupported === true);
  return view === undefined ? (
    <Waiting size={size} footer={footer} />
  ) : (
    <Dashboard view={view} footer={footer} />
  );
}

function footerFor(phase: QuitPhase, ownsNode: boolean, keys: boolean): FooterView {
  switch (phase) {
    case 'watching':
      if (!keys)
        return {
          text: ownsNode ? 'Ctrl-C stops the node' : 'Ctrl-C detaches',
          tone: 'dim',
          prominent: false,
        };
      return {
        text: ownsNode ? 'q quit (stops the node)' : 'q detach (the node keeps running)',
        tone: 'dim',
        prominent: false,
      };
    case 'confirming':
      return { text: 'Stop the node? (y/n)', tone: 'warn', prominent: true };
    case 'leaving':
      return { text: ownsNode ? 'Stopping the node…' : 'Detaching…', tone: 'warn', prominent: true };
    default: {
      const unknown: never = phase;
      return unknown;
    }
  }
}
