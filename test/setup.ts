import '../src/shim.js';

// Ink draws only the last frame when it believes it runs in CI (it reads CI at import time). The
// dashboard tests watch frames as they are drawn, and CI runs this suite with CI=true, so the test
// process clears it before any test file imports Ink.
delete process.env['CI'];
