/**
 * For suites that drive the home engine with a TestClock (hours of approval and Odoo.sh waits moved in
 * milliseconds). `laneWorkEnded` raises the end of a work on its lane until the lane took it, i.e.
 * until the lane's drain timer (due now) fired and its next generation lists the work as done. Under a
 * TestClock that timer fires only in `clock.advance`, which first waits for the engine to be idle, i.e.
 * for that very activity: each end would wait out the give-up time (60 s). Here the activity (and every
 * other sender of the test file) raises once and does not wait (the repeat itself is tested in test/integration/deploy-lane.test.ts, on
 * a real clock and on both engines).
 */
import type { InvocationContext } from '@azure/functions';
import { laneWorkEnded } from '../../functions/activities/lane';
import { registeredFunctions } from '../../local/functions-core';
import { DELIVERY, type DeliveryTiming } from '../../shared/adapters/durable-status';

export function laneEndsWithoutWaiting(): void {
  // and so does every sender of this test file (routeToLane in the HTTP functions): the lane takes a
  // request only when the ticker's clock.advance finds the engine idle, which a busy test may delay past
  // the give-up time (a fresh-clone CI run saw deploy-odoosh's POSTs answer after ~60 s)
  Object.assign(DELIVERY, { pollMs: 0, repeatMs: Infinity, giveUpMs: 0 } satisfies DeliveryTiming);
  const entry = registeredFunctions().find((f) => f.metadata.name === 'laneWorkEnded');
  if (!entry) throw new Error('laneWorkEnded is not registered: import functions/activities/lane first');
  entry.handler = ((input: Parameters<typeof laneWorkEnded>[0], ctx: InvocationContext) =>
    laneWorkEnded(input, ctx, { pollMs: 0, repeatMs: Infinity, giveUpMs: 0 })) as typeof entry.handler;
}
