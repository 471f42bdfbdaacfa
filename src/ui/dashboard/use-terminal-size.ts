import { useStdout } from 'ink';
import { useEffect, useState } from 'react';
import type { TerminalSize } from './view-model.js';

/** When the output is not a terminal (piped, or a test stream without a size). */
const fallbackSize: TerminalSize = { columns: 80, rows: 24 };

function measure(stdout: NodeJS.WriteStream): TerminalSize {
  return { columns: stdout.columns || fallbackSize.columns, rows: stdout.rows || fallbackSize.rows };
}

/** The size of Ink's output terminal, updated when it is resized. */
export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const [size, setSize] = useState(() => measure(stdout));
  useEffect(() => {
    const resized = () => {
      const next = measure(stdout);
      setSize((prev) => (prev.columns === next.columns && prev.rows === next.rows ? prev : next));
    };
    stdout.on('resize', resized);
    // A resize between the first render and this subscription.
    resized();
    return () => {
      stdout.off('resize', resized);
    };
  }, [stdout]);
  return size;
}
