import type { WireStream } from '../../../src/engine/network/request-response.js';

/**
 * Two connected in-memory streams with the half-close and reset behaviour of a libp2p stream:
 * `close()` ends the other side's input, `abort()` resets both sides.
 */
export function memoryStreamPair(): [MemoryStream, MemoryStream] {
  const a = new MemoryStream();
  const b = new MemoryStream();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export class MemoryStream implements WireStream {
  status = 'open';
  maxReadBufferLength = Number.POSITIVE_INFINITY;
  peer!: MemoryStream;
  /** Bytes this side has sent, for tests that inspect the wire. */
  sentBytes = 0;
  private readonly inbox: Uint8Array[] = [];
  private inputEnded = false;
  private inputError: Error | undefined;
  private writeClosed = false;
  private wake: (() => void) | undefined;
  private readonly closeListeners: Array<() => void> = [];

  send(data: Uint8Array): boolean {
    if (this.writeClosed || this.status !== 'open')
      throw new Error(`cannot write to a ${this.status} stream`);
    this.sentBytes += data.byteLength;
    this.peer.deliver(data.slice());
    return true;
  }

  async onDrain(): Promise<void> {}

  close(): Promise<void> {
    if (this.writeClosed || this.status !== 'open') return Promise.resolve();
    this.writeClosed = true;
    this.peer.endInput();
    this.settle();
    return Promise.resolve();
  }

  abort(error: Error): void {
    if (this.status !== 'open') return;
    this.status = 'aborted';
    this.failInput(error);
    this.peer.remoteReset();
    this.fireClose();
  }

  addEventListener(_type: 'close', listener: () => void): void {
    if (this.status !== 'open') return;
    this.closeListeners.push(listener);
  }

  removeEventListener(_type: 'close', listener: () => void): void {
    const index = this.closeListeners.indexOf(listener);
    if (index >= 0) this.closeListeners.splice(index, 1);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const next = this.inbox.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.inputError !== undefined) throw this.inputError;
      if (this.inputEnded) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private deliver(data: Uint8Array): void {
    if (this.status !== 'open' || this.inputEnded) return;
    this.inbox.push(data);
    this.poke();
  }

  private endInput(): void {
    this.inputEnded = true;
    this.poke();
    this.settle();
  }

  private remoteReset(): void {
    if (this.status !== 'open') return;
    this.status = 'reset';
    this.failInput(Object.assign(new Error('The stream has been reset'), { name: 'StreamResetError' }));
    this.fireClose();
  }

  private failInput(error: Error): void {
    this.inbox.length = 0;
    this.inputError = error;
    this.poke();
  }

  private settle(): void {
    if (this.status === 'open' && this.writeClosed && this.inputEnded) {
      this.status = 'closed';
      this.fireClose();
    }
  }

  private fireClose(): void {
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
