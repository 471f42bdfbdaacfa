import { Box, Text } from 'ink';
import { metricColumns, type ActivityView, type Tone } from '../view-model.js';
import { toneProps } from './tone.js';

function MetricRow(props: { label: string; value: string; spark: string; side: string; sideTone: Tone }) {
  return (
    <Box>
      <Box width={metricColumns.label} flexShrink={0}>
        <Text dimColor>{props.label}</Text>
      </Box>
      <Box width={metricColumns.value} flexShrink={0} justifyContent="flex-end">
        <Text bold>{props.value}</Text>
      </Box>
      <Text color="cyan"> {props.spark} </Text>
      <Box flexGrow={1} justifyContent="flex-end">
        <Text {...toneProps(props.sideTone)} wrap="truncate">
          {props.side}
        </Text>
      </Box>
    </Box>
  );
}

/**
 * A labelled line of text: `phases` (each commit phase's p50 over the last minute) and `served`
 * (requests served for others per second: a node may lead a tail without coordinating anything).
 * Dim when there is nothing (`—`).
 */
function TextRow(props: { label: string; text: string }) {
  return (
    <Box>
      <Box width={metricColumns.label} flexShrink={0}>
        <Text dimColor>{props.label}</Text>
      </Box>
      <Text> </Text>
      <Text dimColor={props.text === '—'} wrap="truncate">
        {props.text}
      </Text>
    </Box>
  );
}

/** Transactions per second, commit latency with its phases, pending transactions, and requests served. */
export function ActivityRows({ activity }: { readonly activity: ActivityView }) {
  return (
    <>
      <MetricRow
        label="tx/s"
        value={activity.txPerSec}
        spark={activity.txSpark}
        side={`pending ${activity.pending}`}
        sideTone={activity.pendingTone}
      />
      <MetricRow
        label="p50"
        value={activity.p50}
        spark={activity.p50Spark}
        side={`p99 ${activity.p99}`}
        sideTone={activity.p99Tone}
      />
      <TextRow label="phases" text={activity.phases} />
      <TextRow label="served" text={activity.served} />
    </>
  );
}
