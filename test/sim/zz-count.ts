import { simOptionsFor } from './options.js';
import { runSimulation } from './world.js';
let ballots = 0; const t = Date.now(); let maxMs = 0, maxSteps = 0;
for (let s = 1; s <= Number(process.env.N ?? 200); s++) { const r = runSimulation(simOptionsFor(s)); ballots += r.ballots; maxMs = Math.max(maxMs, r.livenessMs); maxSteps = Math.max(maxSteps, r.livenessSteps); }
console.log('ballots', ballots, (globalThis as any).__c, Date.now() - t, 'ms', maxMs, maxSteps);
