import type { Hook } from '@oclif/core';
import { EngineError } from '../../../engine/index.js';
import { describeFailure, reportFailure } from '../failure.js';
import { envTruthy, jsonEnvVar } from '../global-flags.js';

/**
 * oclif `command_not_found` hook: an unknown command (or an extra word after a command that takes no
 * arguments, which oclif reads as a longer command name) is a usage error like any other: one line on
 * stderr, or the JSON error document with --json, and exit 2.
 */
const commandNotFound: Hook<'command_not_found'> = function (options) {
  const words = options.id.split(':');
  const json = (options.argv ?? []).includes('--json') || envTruthy(process.env[jsonEnvVar]);
  // The longest prefix that is a topic or command, to point at the help that lists what exists.
  let known = 0;
  let isCommand = false;
  for (let i = words.length - 1; i > 0; i--) {
    const prefix = words.slice(0, i).join(':');
    isCommand = options.config.findCommand(prefix) !== undefined;
    if (isCommand || options.config.findTopic(prefix) !== undefined) {
      known = i;
      break;
    }
  }
  const knownWords = words.slice(0, known).join(' ');
  const rest = words.slice(known).join(' ');
  const help = [options.config.bin, knownWords, '--help'].filter((part) => part !== '').join(' ');
  const message = isCommand
    ? `${options.config.bin} ${knownWords} takes no argument "${rest}" (see: ${help})`
    : `${options.config.bin} has no command "${words.join(' ')}" (see: ${help})`;
  const failure = describeFailure(new EngineError('BAD_INPUT', message));
  reportFailure(failure, { json, verbose: false });
  return Promise.resolve();
};

export default commandNotFound;
