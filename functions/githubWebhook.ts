/**
 * POST /api/github/webhook — GitHub intake. Anonymous trigger: the HMAC signature is the
 * authentication (no credential in the URL). Verify → dedupe → gate → deploy-uat message; see
 * functions/activities/intake.ts for the steps and docs/WEBHOOK_SETUP.md for the GitHub side.
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { defaultIntake } from './activities/intake';
import { messageOf } from '../shared/domain/errors';

export async function githubWebhook(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  let intake;
  try {
    intake = defaultIntake();
  } catch (err) {
    // a configuration problem of ours, not the sender's: 503 so GitHub shows a failed delivery to redeliver
    context.error(`intake is not configured: ${messageOf(err)}`);
    return {
      status: 503,
      jsonBody: {
        error: 'INTAKE.NOT_CONFIGURED',
        message: 'the intake is not configured; see the function app logs',
      },
    };
  }
  return intake.handle(req, context);
}

app.http('githubWebhook', {
  methods: ['POST'],
  authLevel: 'anonymous',
  route: 'github/webhook',
  extraInputs: [df.input.durableClient()],
  handler: githubWebhook,
});
