// the status page during a PROD outage in Chromium on the real Durable Task engine,
// inside `npm test` (see test/support/on-webjobs.ts)
import '../support/on-webjobs';
import './dashboard-outage.test';
