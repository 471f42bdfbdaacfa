import { Box, Text } from 'ink';
import { metricColumns, type StorageView } from '../view-model.js';
import { toneProps } from './tone.js';

/** Storage used against capacity, and what is held. */
export function StorageRows({ storage }: { readonly storage: StorageView }) {
  return (
    <>
      <Box>
        <Box width={metricColumns.label} flexShrink={0}>
          <Text dimColor>used</Text>
        </Box>
        {storage.gauge !== undefined && storage.gauge.filled.length + storage.gauge.empty.length > 0 ? (
          <Text>
            <Text {...toneProps(storage.gauge.tone)}>{storage.gauge.filled}</Text>
            <Text dimColor>{storage.gauge.empty}</Text>{' '}
          </Text>
        ) : null}
        <Text wrap="truncate">
          <Text bold>{storage.used}</Text>
          {storage.percent !== undefined ? (
            <Text {...toneProps(storage.gauge?.tone ?? 'plain')}> {storage.percent}</Text>
          ) : null}
        </Text>
      </Box>
      <Text wrap="truncate">{storage.counts}</Text>
      {storage.failure !== undefined ? (
        <Text wrap="truncate" {...toneProps('bad')}>
          {storage.failure}
        </Text>
      ) : null}
    </>
  );
}
