import { Box, Text } from 'ink';
import type { DashboardViewModel, Tone } from '../view-model.js';
import { ActivityRows } from './activity-panel.js';
import { EventRows } from './event-log.js';
import { Header } from './header.js';
import { Panel } from './panel.js';
import { PeerRows } from './peers-panel.js';
import { StorageRows } from './storage-panel.js';
import { toneProps } from './tone.js';

/** The bottom line: key hints, or the question being asked. */
export interface FooterView {
  readonly text: string;
  readonly tone: Tone;
  /** A question or state change the operator should not miss. */
  readonly prominent: boolean;
}

export function Footer({ footer, width }: { readonly footer: FooterView; readonly width: number }) {
  return (
    <Box width={width} paddingX={1} flexShrink={0}>
      <Text wrap="truncate" bold={footer.prominent} {...toneProps(footer.tone)}>
        {footer.text}
      </Text>
    </Box>
  );
}

/** The whole screen, drawn from a view model; narrow stacks the panels, wide sets them in two columns. */
export function Dashboard({
  view,
  footer,
}: {
  readonly view: DashboardViewModel;
  readonly footer: FooterView;
}) {
  const { layout } = view;
  const wide = layout.mode === 'wide';
  const activity = (
    <Panel title="Transactions" width={layout.leftWidth} framed={wide}>
      <ActivityRows activity={view.activity} />
    </Panel>
  );
  const storage = (
    <Panel title="Storage" width={layout.leftWidth} framed={wide}>
      <StorageRows storage={view.storage} />
    </Panel>
  );
  const peers = (
    <Panel title="Peers" summary={view.network.summary} width={layout.leftWidth} framed={wide} grow={wide}>
      <PeerRows network={view.network} />
    </Panel>
  );
  const events = (
    <Panel title="Events" summary={view.events.summary} width={layout.rightWidth} framed={wide} grow>
      <EventRows events={view.events} />
    </Panel>
  );
  return (
    <Box flexDirection="column" width={layout.columns} height={layout.rows}>
      <Header header={view.header} width={layout.columns} />
      {/* On a terminal too short for everything, the panels are cut off at the bottom rather than drawn over the footer. */}
      {wide ? (
        <Box flexDirection="row" columnGap={1} flexGrow={1} flexShrink={1} overflow="hidden">
          <Box flexDirection="column" width={layout.leftWidth} flexShrink={0}>
            {activity}
            {storage}
            {peers}
          </Box>
          <Box flexDirection="column" width={layout.rightWidth} flexShrink={0}>
            {events}
          </Box>
        </Box>
      ) : (
        <Box flexDirection="column" flexGrow={1} flexShrink={1} overflow="hidden">
          {activity}
          {storage}
          {peers}
          {events}
        </Box>
      )}
      <Footer footer={footer} width={layout.columns} />
    </Box>
  );
}

/** Shown until the first status arrives. */
export function Waiting({
  size,
  footer,
}: {
  readonly size: { readonly columns: number; readonly rows: number };
  readonly footer: FooterView;
}) {
  return (
    <Box flexDirection="column" width={size.columns} height={size.rows}>
      <Box flexGrow={1} paddingX={1}>
        <Text>
          <Text bold color="cyan">
            Optimystic
          </Text>
          <Text dimColor> waiting for the node&apos;s first status…</Text>
        </Text>
      </Box>
      <Footer footer={footer} width={size.columns} />
    </Box>
  );
}
