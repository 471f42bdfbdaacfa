/**
 * `--connect MULTIADDR`: the CLI as a short-lived libp2p peer (client mode) that sends the same API
 * requests as the control socket over the `client` protocol of a remote node. The node serves only
 * the peers of its `clients` setting, so the CLI passes the key of its data directory's client.key
 * (client-key.ts) as `privateKey`: a stable peer id a node can list. Without one, a fresh key.
 * Loaded on demand: libp2p costs a few hundred milliseconds to import.
 */
import { EngineError } from '../base/errors.js';
import { openClientSession, type PrivateKey } from '../network/index.js';
import type { ApiTransport } from './control-client.js';
import { RemoteNode } from './remote.js';

export interface LightClientInit {
  readonly address: string;
  readonly network: string;
  readonly requestTimeoutMs?: number;
  /** The client's libp2p identity; a fresh one when absent. */
  readonly privateKey?: PrivateKey;
}

export async function openLightClient(init: LightClientInit): Promise<RemoteNode> {
  if (!init.address.startsWith('/'))
    throw new EngineError(
      'BAD_INPUT',
      `--connect needs a multiaddr such as /ip4/203.0.113.7/tcp/4001/p2p/12D3Koo…, not ${JSON.stringify(init.address)}`,
    );
  const session = await openClientSession(
    {
      address: init.address,
      network: init.network,
      ...(init.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: init.requestTimeoutMs }),
    },
    init.privateKey === undefined ? {} : { privateKey: init.privateKey },
  );
  const transport: ApiTransport = {
    call: (method, params) => session.request({ type: method, params }),
    stream: (method, params) => session.requestStream({ type: method, params }),
    close: () => session.close(),
  };
  return new RemoteNode(transport, 'libp2p', init.address);
}
