// Leaving the dashboard, as a small state machine the app drives with key presses.

/** Watching the node; asking whether to stop it; leaving (the caller's onQuit is running). */
export type QuitPhase = 'watching' | 'confirming' | 'leaving';

/** The keys that matter for leaving: q, Ctrl-C, y, n (or Escape), anything else. */
export type QuitKey = 'quit' | 'interrupt' | 'yes' | 'no' | 'other';

export interface QuitStep {
  readonly phase: QuitPhase;
  /** True exactly once: on the step that enters `leaving`, when the caller's onQuit must run. */
  readonly leave: boolean;
}

/**
 * The next phase after a key. A dashboard that owns its node (`node start`) asks before leaving,
 * because leaving stops the node; `y` or a second Ctrl-C confirms, `n` or Escape returns to watching.
 * An attached dashboard (`node dashboard`) leaves at once: it only detaches.
 */
export function quitStep(phase: QuitPhase, key: QuitKey, ownsNode: boolean): QuitStep {
  switch (phase) {
    case 'watching':
      if (key === 'quit' || key === 'interrupt')
        return ownsNode ? { phase: 'confirming', leave: false } : { phase: 'leaving', leave: true };
      return { phase, leave: false };
    case 'confirming':
      if (key === 'yes' || key === 'interrupt') return { phase: 'leaving', leave: true };
      if (key === 'no') return { phase: 'watching', leave: false };
      return { phase, leave: false };
    case 'leaving':
      return { phase, leave: false };
    default: {
      const unknown: never = phase;
      return unknown;
    }
  }
}

/** Classifies an Ink key press. */
export function quitKey(input: string, key: { readonly ctrl: boolean; readonly escape: boolean }): QuitKey {
  if (key.ctrl && input === 'c') return 'interrupt';
  if (key.escape) return 'no';
  if (key.ctrl) return 'other';
  switch (input) {
    case 'q':
    case 'Q':
      return 'quit';
    case 'y':
    case 'Y':
      return 'yes';
    case 'n':
    case 'N':
      return 'no';
    default:
      return 'other';
  }
}
