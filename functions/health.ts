import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { pipelineVersion } from '../shared/version';

/** Liveness: anonymous, no dependencies touched, so it answers even when a dependency is down. */
export async function health(_req: HttpRequest, _ctx: InvocationContext): Promise<HttpResponseInit> {
  return {
    status: 200,
    jsonBody: {
      status: 'ok',
      version: pipelineVersion(),
      runtime: process.env.PIPELINE_RUNTIME ?? 'local',
      time: new Date().toISOString(),
    },
    headers: { 'cache-control': 'no-store' },
  };
}

app.http('health', { methods: ['GET', 'HEAD'], authLevel: 'anonymous', route: 'health', handler: health });
