// the embedded host end to end on the real Durable Task engine,
// inside `npm test` (see test/support/on-webjobs.ts)
import '../support/on-webjobs';
import './local-host.test';
