/**
 * The UAT deploy crash matrix (test/e2e/deploy-uat-crash-matrix.ts) on the REAL Durable Task engine
 * (LOCAL_DURABLE_ENGINE=webjobs: the extension's Azure Storage provider on the host's supervised Azurite).
 * The activity in flight at each kill runs again when its work-item message is visible again, 30 s
 * (the local host's work-item visibility timeout) after it was taken: about 30 s per kill, ten kills.
 */
import '../support/on-webjobs';
import { describeDeployCrashMatrix } from './deploy-uat-crash-matrix';

jest.setTimeout(45 * 60 * 1000);

describeDeployCrashMatrix('webjobs');
