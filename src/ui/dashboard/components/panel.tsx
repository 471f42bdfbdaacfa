import { Box, Text } from 'ink';
import type { ReactNode } from 'react';

export interface PanelProps {
  readonly title: string;
  readonly summary?: string;
  /** Outer width in columns. */
  readonly width: number;
  /** Framed: a rounded box with the title in its top edge. Unframed: a title rule, then the rows. */
  readonly framed: boolean;
  /** Take the height left over in the parent column. */
  readonly grow?: boolean;
  readonly children?: ReactNode;
}

/** A titled section of the dashboard. */
export function Panel({ title, summary, width, framed, grow = false, children }: PanelProps) {
  // `╭─ Title ─ summary ───╮` over a framed panel, ` ─ Title ─ summary ─── ` over an unframed one.
  const open = framed ? '╭─ ' : ' ─ ';
  const close = framed ? '╮' : ' ';
  const room = width - open.length - title.length - 1 - close.length;
  const note =
    summary === undefined || summary === '' || room < 6
      ? ''
      : `─ ${summary.length > room - 3 ? `${summary.slice(0, Math.max(0, room - 4))}…` : summary} `;
  const fill = '─'.repeat(Math.max(0, room - note.length));
  return (
    <Box flexDirection="column" width={width} flexShrink={0} {...(grow ? { flexGrow: 1 } : {})}>
      <Text wrap="truncate">
        <Text dimColor>{open}</Text>
        <Text bold>{title}</Text>
        <Text dimColor>{` ${note}${fill}${close}`}</Text>
      </Text>
      {framed ? (
        <Box
          borderStyle="round"
          borderTop={false}
          borderDimColor
          paddingX={1}
          flexDirection="column"
          flexGrow={1}
        >
          {children}
        </Box>
      ) : (
        <Box paddingX={1} flexDirection="column" flexGrow={1}>
          {children}
        </Box>
      )}
    </Box>
  );
}
