// the intake through the embedded host on the real Durable Task engine,
// inside `npm test` (see test/support/on-webjobs.ts)
import '../support/on-webjobs';
import './intake-host.test';
