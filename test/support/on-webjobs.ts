/**
 * Imported first by a `*.webjobs.test.ts` file: the suite it imports next runs on the real Durable Task
 * engine (LOCAL_DURABLE_ENGINE=webjobs) inside `npm test`, so its coverage of the real-engine host code
 * (local/durable-webjobs.ts, local/durable-host.ts) counts in the gate.
 */
process.env.LOCAL_DURABLE_ENGINE = 'webjobs';
export const ENGINE = 'webjobs';
