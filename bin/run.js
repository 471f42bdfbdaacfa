#!/usr/bin/env node
import '../dist/shim.js';
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
