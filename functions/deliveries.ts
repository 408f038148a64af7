/** GET /api/deliveries?limit=N — recent intake decisions, newest first (function key). */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { defaultIntake } from './activities/intake';
import { errorCode, messageOf } from '../shared/domain/errors';

export async function deliveries(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const raw = req.query.get('limit');
  const limit = raw === null || raw === '' ? 50 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    return {
      status: 400,
      jsonBody: { error: 'DELIVERIES.BAD_LIMIT', message: 'limit must be an integer from 1 to 500' },
    };
  }
  try {
    const items = await defaultIntake().list(limit);
    return {
      status: 200,
      jsonBody: { count: items.length, items },
      headers: { 'cache-control': 'no-store' },
    };
  } catch (err) {
    context.error(`listing deliveries failed: ${messageOf(err)}`);
    return {
      status: 503,
      jsonBody: { error: errorCode(err) ?? 'DELIVERIES.UNAVAILABLE', message: messageOf(err) },
    };
  }
}

app.http('deliveries', { methods: ['GET'], authLevel: 'function', route: 'deliveries', handler: deliveries });
