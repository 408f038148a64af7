/**
 * For suites that drive the home engine with a TestClock (hours of approval and Odoo.sh waits moved in
 * milliseconds). The lane's senders (`routeToLane`, the `laneWorkEnded` activity) raise an event until
 * the lane took it, i.e. until the lane's drain timer (due now) fired and its next generation lists the
 * event. Under a TestClock that timer fires only in `clock.advance`, which first waits for the engine
 * to be idle: for an end, for that very activity; for a request, for whatever the engine runs (a
 * fresh-clone CI run saw deploy-odoosh's POSTs wait past the test's 60 s). Here every sender of the
 * test file raises once and does not wait (the repeat itself is tested in
 * test/integration/deploy-lane.test.ts, on a real clock and on both engines).
 */
import { DELIVERY, type DeliveryTiming } from '../../shared/adapters/durable-status';

export function laneSendsWithoutWaiting(): void {
  Object.assign(DELIVERY, { pollMs: 0, repeatMs: Infinity, giveUpMs: 0 } satisfies DeliveryTiming);
}
