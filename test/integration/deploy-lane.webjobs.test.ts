// the deploy lane through the embedded host on the real Durable Task engine,
// inside `npm test` (see test/support/on-webjobs.ts)
import '../support/on-webjobs';
import './deploy-lane.test';
