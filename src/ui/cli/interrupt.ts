import { exitClasses } from './exit-codes.js';

/**
 * Ctrl-C handling for one command run. The first SIGINT aborts `signal`: streaming commands stop at
 * the next item, `tx` stops reading input and finishes what is in flight, and the database is closed
 * cleanly. A second SIGINT exits at once with 130, for when the user really means it.
 */
export class InterruptWatch {
  private readonly controller = new AbortController();
  private installed = false;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get interrupted(): boolean {
    return this.controller.signal.aborted;
  }

  private readonly onSignal = (): void => {
    if (this.controller.signal.aborted) {
      process.stderr.write('interrupted again: exiting without a clean close\n');
      process.exit(exitClasses.interrupted);
    }
    this.controller.abort();
  };

  install(): void {
    if (this.installed) return;
    this.installed = true;
    process.on('SIGINT', this.onSignal);
  }

  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    process.off('SIGINT', this.onSignal);
  }
}
