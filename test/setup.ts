import '../src/shim.js';
