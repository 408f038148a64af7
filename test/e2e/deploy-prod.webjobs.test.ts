// deployProd on the sandbox PROD VM on the real Durable Task engine,
// inside `npm test` (see test/support/on-webjobs.ts)
import '../support/on-webjobs';
import './deploy-prod.test';
