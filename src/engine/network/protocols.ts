/**
 * Protocol ids. Everything a node speaks is namespaced by its network name, so nodes of different
 * networks never answer each other: `/optimystic/<network>/<name>/1`, and the DHT on
 * `/optimystic/<network>/kad/1.0.0`.
 */
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';

const namePattern = /^[a-z0-9][a-z0-9._-]*$/;

/** The network used when none is configured. */
export const defaultNetwork = 'default';

/** Checks a network or protocol name: lowercase letters, digits, `.`, `_`, `-`; CONFIG_INVALID otherwise. */
export function checkName(name: string, what: 'network' | 'protocol'): string {
  if (name.length === 0 || name.length > limits.protocolNameCharsMax || !namePattern.test(name)) {
    throw new EngineError(
      'CONFIG_INVALID',
      `${what} name ${JSON.stringify(name)} must be 1-${limits.protocolNameCharsMax} characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
      { field: what },
    );
  }
  return name;
}

/** Prefix shared by every protocol id of one network. */
export function networkPrefix(network: string): string {
  return `/optimystic/${checkName(network, 'network')}/`;
}

/** `/optimystic/<network>/<name>/1`. */
export function protocolId(network: string, name: string): string {
  return `${networkPrefix(network)}${checkName(name, 'protocol')}/1`;
}

/** The Kademlia protocol id of a network: `/optimystic/<network>/kad/1.0.0`. */
export function dhtProtocolId(network: string): string {
  return `${networkPrefix(network)}kad/1.0.0`;
}

/** The network a protocol id belongs to, when it is an Optimystic protocol id. */
export function networkOfProtocol(protocol: string): string | undefined {
  const match = /^\/optimystic\/([^/]+)\//.exec(protocol);
  return match?.[1];
}
