/**
 * Requests as the deploy lane receives them (functions/orchestrators/deployLane.ts): a merge's
 * `deployUat` (a real intake request's fields) and a refresh, which names its orchestrator and instance id.
 */
import type { LaneRequest } from '../../functions/orchestrators/deployLane';

/** A merge of `version` at the commit `c` repeated to 40 hex digits, routed to the lane of `environment`. */
export const laneMerge = (environment: string, version: string, c: string): LaneRequest => ({
  type: 'deploy-uat',
  environment,
  repository: 'acme/odoo-mta',
  version,
  sha: c.repeat(40),
  imageRef: `registry.acme.test/odoo-mta:uat-v${version}`,
  coverage: 91.2,
  mergedBy: 'alice',
  trigger: 'push',
  deliveryId: `delivery-${version}`,
  requestedAt: '2026-12-06T05:00:00Z',
});

/** A refresh asked of the lane of `environment` (instance id `refresh-<env>-…-<k>`). */
export const laneRefresh = (environment: string, k: string): LaneRequest => ({
  ...laneMerge(environment, 'refresh', '0'),
  sha: '',
  version: 'refresh',
  orchestrator: 'refreshUat',
  instanceId: `refresh-${environment}-20261206t050000z-${k}`,
});
