// Rendering with ink-testing-library at a chosen terminal size, and reading frames as plain text.
import { render } from 'ink-testing-library';
import type { ReactElement } from 'react';
import type { TerminalSize } from '../../../src/ui/dashboard/view-model.js';

export type Rendered = ReturnType<typeof render>;

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g;

/** The frame without colour codes. */
export function plain(frame: string | undefined): string {
  return (frame ?? '').replace(ansi, '');
}

export function lines(frame: string | undefined): string[] {
  return plain(frame).split('\n');
}

/**
 * ink-testing-library's stdout is 100 columns and has no rows: give it a size and tell Ink (and the
 * dashboard's size hook) it was resized, the way a terminal does.
 */
export function resize(rendered: Rendered, size: TerminalSize): void {
  Object.defineProperty(rendered.stdout, 'columns', { value: size.columns, configurable: true });
  Object.defineProperty(rendered.stdout, 'rows', { value: size.rows, configurable: true });
  rendered.stdout.emit('resize');
}

/** Renders, resizes to `size`, and renders again so the frame is laid out at that width. */
export function renderAt(tree: ReactElement, size: TerminalSize): Rendered {
  const rendered = render(tree);
  resize(rendered, size);
  rendered.rerender(tree);
  return rendered;
}

/** Lets timers and pending renders run. */
export function settle(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `predicate` holds for the last frame, or fails after `timeoutMs`. */
export async function frameWhere(
  rendered: Rendered,
  predicate: (frame: string) => boolean,
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frame = plain(rendered.lastFrame());
    if (predicate(frame)) return frame;
    if (Date.now() > deadline)
      throw new Error(`no frame matched within ${timeoutMs} ms; last frame:\n${frame}`);
    await settle(5);
  }
}
