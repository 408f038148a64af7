/**
 * Function modules for the webhook benchmark: the intake as the app registers it, plus a bench-only
 * `deployUat` that ends at once (the real deploy flow would need VMs), and the floor: a function that
 * does only what any intake must (verify the signature, parse the JSON) and answers, to show what the
 * embedded host and the programming model cost before the intake's own work. Loaded by
 * bench/webhook.ts through the embedded host's `functionsDir`.
 */
import { app, type HttpRequest } from '@azure/functions';
import * as df from 'durable-functions';
import { isRejection, verifyRequest } from '../../shared/domain/webhook';
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

app.http('benchWebhookFloor', {
  methods: ['POST'],
  authLevel: 'anonymous',
  route: 'bench/webhook-floor',
  handler: async (req: HttpRequest) => {
    const v = await verifyRequest(
      [process.env.GITHUB_WEBHOOK_SECRET],
      req.headers,
      new Uint8Array(await req.arrayBuffer()),
    );
    if (isRejection(v)) return { status: v.status, jsonBody: { error: v.code } };
    return { status: 200, jsonBody: { decision: 'ignored', reason: `floor: ${v.event}` } };
  },
});
