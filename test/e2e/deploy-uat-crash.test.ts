/**
 * The UAT deploy crash matrix (test/e2e/deploy-uat-crash-matrix.ts) on the home-made Durable engine
 * (local/durable/): SIGKILL of the host's process group at every step of a UAT deploy, and inside the pull
 * of a broken release. Its twin on the real Durable Task engine: deploy-uat-crash.webjobs.test.ts.
 */
import { describeDeployCrashMatrix } from './deploy-uat-crash-matrix';

jest.setTimeout(25 * 60 * 1000);

describeDeployCrashMatrix('home');
