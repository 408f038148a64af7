// a PROD outage (status page, JSON status, CLI) on the real Durable Task engine, inside `npm test`
// (see test/support/on-webjobs.ts)
import '../support/on-webjobs';
import './status-outage.test';
