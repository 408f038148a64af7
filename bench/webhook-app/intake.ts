/**
 * Function modules for the webhook benchmark: the intake as the app registers it, plus a bench-only
 * `deployUat` that ends at once (the real deploy flow would need VMs). Loaded by bench/webhook.ts
 * through the embedded host's `functionsDir`.
 */
import * as df from 'durable-functions';
import '../../functions/githubWebhook';
import '../../functions/deliveries';
import '../../functions/deployQueueTrigger';
import '../../functions/orchestrators/deployLane';
import '../../functions/orchestrators/coverageWait';
import '../../functions/activities/intake';

// eslint-disable-next-line require-yield -- nothing to wait for: the bench only measures intake
df.app.orchestration('deployUat', function* () {
  return { outcome: 'Succeeded (bench stub)' };
});
