// approvals-deployprod on the real Durable Task engine, inside `npm test` (see test/support/on-webjobs.ts):
// the approval gate's waits, decisions and four-eyes rule driven by the extension
import '../support/on-webjobs';
import './approvals-deployprod.test';
