import { Box, Text } from 'ink';
import { addressLabelWidth, type HeaderView } from '../view-model.js';
import { toneProps } from './tone.js';

/** Identity, flags and addresses across the top of the screen. */
export function Header({ header, width }: { readonly header: HeaderView; readonly width: number }) {
  return (
    <Box flexDirection="column" width={width} paddingX={1} flexShrink={0}>
      <Box justifyContent="space-between">
        <Text wrap="truncate">
          <Text bold color="cyan">
            {header.title}
          </Text>
          {'  '}
          <Text bold>{header.peerId}</Text>
        </Text>
        <Box flexShrink={0} marginLeft={1}>
          <Text wrap="truncate">{header.uptime}</Text>
        </Box>
      </Box>
      <Text wrap="truncate">
        {header.tags.map((tag, i) => (
          <Text key={tag.text}>
            {i > 0 ? <Text dimColor> · </Text> : null}
            <Text {...toneProps(tag.tone)}>{tag.text}</Text>
          </Text>
        ))}
      </Text>
      {header.addresses.map((line) => (
        <Text key={line.label} wrap="truncate">
          <Text dimColor>{line.label.padEnd(addressLabelWidth)}</Text>
          {line.text}
        </Text>
      ))}
    </Box>
  );
}
