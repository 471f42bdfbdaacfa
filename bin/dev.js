#!/usr/bin/env -S node --import tsx --no-warnings
import '../src/shim.ts';
import { execute } from '@oclif/core';

await execute({ development: true, dir: import.meta.url });
