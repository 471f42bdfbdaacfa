import { Text } from 'ink';
import type { NetworkView } from '../view-model.js';
import { toneProps } from './tone.js';

/** The connected peers, fastest first, one per row. */
export function PeerRows({ network }: { readonly network: NetworkView }) {
  return (
    <>
      {network.heading !== undefined ? (
        <Text dimColor wrap="truncate">
          {network.heading}
        </Text>
      ) : null}
      {network.peers.map((peer, i) => (
        <Text key={`${i}:${peer.id}`} wrap="truncate">
          {peer.id}
          <Text {...toneProps(peer.latencyTone)}>{peer.latency}</Text>
          <Text dimColor>{peer.direction}</Text>
          {peer.since}
          <Text dimColor>{peer.address}</Text>
        </Text>
      ))}
      {network.morePeers > 0 ? <Text dimColor>{`+${network.morePeers} more`}</Text> : null}
      {network.empty !== undefined ? <Text dimColor>{network.empty}</Text> : null}
    </>
  );
}
