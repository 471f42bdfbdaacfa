import { render } from 'ink';
import type { StatusSource } from '../../engine/node/status.js';
import { DashboardApp } from './app.js';

export interface DashboardOptions {
  /**
   * True for the dashboard of `node start`: `q` or Ctrl-C asks "Stop the node? (y/n)" and `y` calls
   * `onQuit`. False for `node dashboard` attached to a running node: `q` or Ctrl-C leaves at once
   * (calling `onQuit`, which should only detach).
   */
  readonly ownsNode: boolean;
  /** Runs when the operator leaves; the dashboard exits once it settles (rejecting, waitUntilExit rejects). */
  readonly onQuit: () => Promise<void>;
  readonly stdout?: NodeJS.WriteStream;
  readonly stdin?: NodeJS.ReadStream;
}

export interface DashboardHandle {
  /** Settles when the dashboard has left the screen: after onQuit, or after close(). */
  waitUntilExit(): Promise<void>;
  /** Takes the dashboard down without asking or calling onQuit (the node stopped some other way). */
  close(): void;
}

const enterAlternateScreen = '\u001b[?1049h';
const leaveAlternateScreen = '\u001b[?1049l';
const clearScreen = '\u001b[2J\u001b[H';

/**
 * Draws the dashboard for `source` until the operator leaves. On a terminal it takes the alternate
 * screen (as `top` and `less` do), so the shell's scrollback is left as it was when it exits.
 */
export function startDashboard(source: StatusSource, options: DashboardOptions): DashboardHandle {
  const stdout = options.stdout ?? process.stdout;
  const stdin = options.stdin ?? process.stdin;
  const fullScreen = stdout.isTTY === true;

  let restored = false;
  const onResize = () => {
    // A resized terminal rewraps what is on screen, and Ink's in-place redraw counts lines it can no
    // longer find; starting from a clear screen avoids leftovers.
    stdout.write(clearScreen);
  };
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.off('resize', onResize);
    process.off('exit', restore);
    // Cleared first: some terminals (tmux after the window grew) copy the alternate screen's lower
    // rows back into the normal one.
    if (fullScreen) stdout.write(clearScreen + leaveAlternateScreen);
  };
  if (fullScreen) {
    stdout.write(enterAlternateScreen + clearScreen);
    stdout.on('resize', onResize);
    // Leave the alternate screen even if the process ends without unmounting.
    process.on('exit', restore);
  }

  let instance: ReturnType<typeof render>;
  try {
    instance = render(<DashboardApp source={source} ownsNode={options.ownsNode} onQuit={options.onQuit} />, {
      stdout,
      stdin,
      // Ctrl-C is a key like q: when this dashboard owns the node it asks before stopping it.
      exitOnCtrlC: false,
      // Only capture console output when drawing on this process's own terminal.
      patchConsole: stdout === process.stdout,
    });
  } catch (error) {
    restore();
    throw error;
  }
  const exited = instance.waitUntilExit().then(
    () => restore(),
    (error: unknown) => {
      restore();
      throw error;
    },
  );
  // A caller that never asks still must not see an unhandled rejection; one that asks gets the error.
  exited.catch(() => undefined);
  return {
    waitUntilExit: () => exited,
    close: () => instance.unmount(),
  };
}
