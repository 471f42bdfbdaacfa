import { Text } from 'ink';
import type { EventLogView } from '../view-model.js';
import { toneProps } from './tone.js';

/** The newest events, oldest at the top, so the log scrolls upward as events arrive. */
export function EventRows({ events }: { readonly events: EventLogView }) {
  return (
    <>
      {events.rows.map((event, i) => (
        // Events have no id; position from the newest is stable enough for a log that only appends.
        <Text key={events.rows.length - i} wrap="truncate">
          <Text dimColor>{event.time}</Text> <Text {...toneProps(event.tone)}>{event.label}</Text>{' '}
          {event.text}
        </Text>
      ))}
      {events.empty !== undefined ? <Text dimColor>{events.empty}</Text> : null}
    </>
  );
}
