import type { Tone } from '../view-model.js';

/** Ink `<Text>` colour props for a tone. */
export function toneProps(tone: Tone): { readonly color?: string; readonly dimColor?: boolean } {
  switch (tone) {
    case 'plain':
      return {};
    case 'dim':
      return { dimColor: true };
    case 'accent':
      return { color: 'cyan' };
    case 'good':
      return { color: 'green' };
    case 'warn':
      return { color: 'yellow' };
    case 'bad':
      return { color: 'red' };
    default: {
      const unknown: never = tone;
      return unknown;
    }
  }
}
