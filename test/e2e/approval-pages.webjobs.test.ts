// the approval and rollback pages in Chromium on the real Durable Task engine,
// inside `npm test` (see test/support/on-webjobs.ts)
import '../support/on-webjobs';
import './approval-pages.test';
