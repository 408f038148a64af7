/**
 * The deploy lane's rules as one generation applies them to the events it takes (`takeLaneEvent`, the pure
 * part of functions/orchestrators/deployLane.ts): one piece of work at a time; a newer request supersedes
 * the waiting request of its OWN orchestrator only; a request already running, waiting or done is a
 * duplicate; an event taken before (same `eventId`, or the same event without one) is ignored; only the end
 * of the running work, with its token, ends it. The whole lane (recording, starting work, continue-as-new)
 * runs on the real engine in test/integration/deploy-lane.test.ts and deploy-lane-rules.test.ts; this file
 * is what mutation testing judges the rules by (no engine per mutant).
 */
import {
  laneDecision,
  laneWorkId,
  takeLaneEvent,
  type LaneRequest,
  type LaneState,
} from '../../functions/orchestrators/deployLane';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import { laneMerge, laneRefresh } from '../support/lane-requests';

const merge = (version: string, c: string, eventId?: string): LaneRequest => ({
  ...laneMerge('uat', version, c),
  ...(eventId ? { eventId } : {}),
});
const refresh = (n: string, eventId?: string): LaneRequest => ({
  ...laneRefresh('uat', n),
  ...(eventId ? { eventId } : {}),
});
const idOf = (r: LaneRequest) => r.instanceId ?? deployInstanceId('uat', r.version, r.sha);
const strip = ({ eventId: _eventId, ...r }: LaneRequest) => r;

const lane = (over: Partial<LaneState> = {}): LaneState => ({
  environment: 'uat',
  lane: 'lane-uat',
  waiting: [],
  done: [],
  seen: [],
  notes: [],
  ...over,
});
const decisions = (s: LaneState) => s.notes.map((n) => [n.decision, n.instanceId, n.reason]);

describe('the lane takes a request', () => {
  it('queues a new request at the end, in arrival order, without its eventId', () => {
    const s = lane({ running: merge('1.0.0', 'a') });
    takeLaneEvent(s, refresh('r1', 'e1'));
    takeLaneEvent(s, merge('1.0.1', 'b', 'e2'));
    expect(s.waiting).toEqual([strip(refresh('r1')), strip(merge('1.0.1', 'b'))]);
    expect(s.seen).toEqual(['e1', 'e2']);
    expect(s.notes).toEqual([]);
  });

  it('supersedes the waiting request of its own orchestrator, saying which and while what ran', () => {
    const s = lane({ running: merge('1.0.0', 'a'), waiting: [merge('1.0.1', 'b'), refresh('r1')] });
    takeLaneEvent(s, merge('1.0.2', 'c', 'e3'));
    expect(s.waiting.map(idOf)).toEqual([idOf(refresh('r1')), idOf(merge('1.0.2', 'c'))]);
    expect(s.notes).toEqual([
      {
        decision: 'superseded',
        reason: `superseded by 1.0.2 (ccccccc) while 1.0.0 (aaaaaaa) was deploying`,
        sha: 'b'.repeat(40),
        version: '1.0.1',
        deliveryId: 'delivery-1.0.1',
        instanceId: idOf(merge('1.0.1', 'b')),
        lane: 'lane-uat',
        supersededBy: idOf(merge('1.0.2', 'c')),
      },
    ]);
  });

  it('never supersedes another orchestrator’s request; names a running refresh as running', () => {
    const s = lane({ running: refresh('r0'), waiting: [refresh('r1')] });
    takeLaneEvent(s, merge('1.0.1', 'b'));
    expect(s.waiting.map(idOf)).toEqual([idOf(refresh('r1')), idOf(merge('1.0.1', 'b'))]);
    expect(s.notes).toEqual([]);
    takeLaneEvent(s, refresh('r2'));
    expect(s.waiting.map(idOf)).toEqual([idOf(merge('1.0.1', 'b')), idOf(refresh('r2'))]);
    expect(decisions(s)).toEqual([
      [
        'superseded',
        idOf(refresh('r1')),
        `superseded by refreshUat ${idOf(refresh('r2'))} while refreshUat ${idOf(refresh('r0'))} was running`,
      ],
    ]);
  });

  it('supersedes without naming running work when nothing runs', () => {
    const s = lane({ waiting: [merge('1.0.1', 'b')] });
    takeLaneEvent(s, merge('1.0.2', 'c'));
    expect(decisions(s)).toEqual([
      ['superseded', idOf(merge('1.0.1', 'b')), 'superseded by 1.0.2 (ccccccc)'],
    ]);
    expect(s.waiting.map(idOf)).toEqual([idOf(merge('1.0.2', 'c'))]);
  });

  it('a request for the running work, a waiting one or one already done is a duplicate, not queued', () => {
    const running = merge('1.0.0', 'a');
    const waiting = merge('1.0.1', 'b');
    const ran = merge('0.9.0', '9');
    const s = lane({ running, waiting: [waiting], done: [idOf(ran)] });
    takeLaneEvent(s, { ...running, deliveryId: 'again-1' });
    takeLaneEvent(s, { ...waiting, deliveryId: 'again-2' });
    takeLaneEvent(s, { ...ran, deliveryId: 'again-3' });
    expect(s.waiting).toEqual([waiting]);
    expect(decisions(s)).toEqual([
      ['duplicate', idOf(running), `deploy ${idOf(running)} is already running, done or waiting`],
      ['duplicate', idOf(waiting), `deploy ${idOf(waiting)} is already running, done or waiting`],
      ['duplicate', idOf(ran), `deploy ${idOf(ran)} already ran in this lane`],
    ]);
    expect(s.notes.map((n) => n.deliveryId)).toEqual(['again-1', 'again-2', 'again-3']);
  });

  it('ignores an event it took before: the same eventId, in this generation or an earlier one', () => {
    const s = lane({ running: merge('1.0.0', 'a'), seen: ['old'] });
    takeLaneEvent(s, merge('1.0.1', 'b', 'old'));
    expect(s.waiting).toEqual([]);
    takeLaneEvent(s, merge('1.0.2', 'c', 'new'));
    takeLaneEvent(s, merge('1.0.3', 'd', 'new'));
    expect(s.waiting.map(idOf)).toEqual([idOf(merge('1.0.2', 'c'))]);
    expect(s.notes).toEqual([]);
  });

  it('without an eventId: ignores the very event the previous generation or this one took last, not another', () => {
    const prev = merge('1.0.1', 'b');
    const s = lane({ running: merge('1.0.0', 'a'), previousLast: JSON.stringify(prev) });
    takeLaneEvent(s, prev);
    expect(s.waiting).toEqual([]);
    const other = merge('1.0.2', 'c');
    takeLaneEvent(s, other);
    expect(s.last).toBe(JSON.stringify(other));
    takeLaneEvent(s, other);
    expect(s.waiting).toEqual([other]);
    expect(s.notes).toEqual([]);
    // the previous generation's event stays ignored for the whole generation
    takeLaneEvent(s, prev);
    expect(s.waiting).toEqual([other]);
    // this generation remembers only the last one it took
    const third = merge('1.0.3', 'd');
    takeLaneEvent(s, third);
    takeLaneEvent(s, other);
    expect(s.waiting).toEqual([other]);
    expect(decisions(s)).toEqual([
      ['superseded', idOf(other), 'superseded by 1.0.3 (ddddddd) while 1.0.0 (aaaaaaa) was deploying'],
      ['superseded', idOf(third), 'superseded by 1.0.2 (ccccccc) while 1.0.0 (aaaaaaa) was deploying'],
    ]);
  });

  it('names work by its orchestrator and instance id, a deployUat by version and sha, whoever sent it', () => {
    const s = lane({ waiting: [{ ...merge('1.0.1', 'b'), orchestrator: 'deployUat' }] });
    takeLaneEvent(s, { ...merge('1.0.2', 'c'), orchestrator: 'deployUat' });
    // an orchestrator request without an instance id (sha + version given): named by its orchestrator alone
    takeLaneEvent(s, { ...merge('r', '1'), orchestrator: 'refreshUat' });
    takeLaneEvent(s, { ...merge('r', '2'), orchestrator: 'refreshUat' });
    expect(decisions(s).map((d) => d[2])).toEqual([
      'superseded by 1.0.2 (ccccccc)',
      'superseded by refreshUat',
    ]);
  });

  it('a request that happens to carry an outcome is still a request; an end needs both work id and outcome', () => {
    const s = lane({ running: merge('1.0.0', 'a'), token: 't-1' });
    takeLaneEvent(s, { ...merge('1.0.1', 'b'), outcome: 'Succeeded' });
    expect(s.waiting.map(idOf)).toEqual([idOf(merge('1.0.1', 'b'))]);
    takeLaneEvent(s, { workEnded: idOf(merge('1.0.0', 'a')), token: 't-1' });
    expect(s.running).toEqual(merge('1.0.0', 'a'));
    expect(s.notes).toEqual([]);
  });

  it('ignores what is neither a request nor an end', () => {
    const s = lane({ running: merge('1.0.0', 'a') });
    for (const e of [
      undefined,
      null,
      'deploy',
      42,
      {},
      { version: '1.0.1' },
      { sha: 'b'.repeat(40) },
      { instanceId: '' },
    ])
      takeLaneEvent(s, e);
    expect(s).toEqual(lane({ running: merge('1.0.0', 'a') }));
    takeLaneEvent(s, { instanceId: 'refresh-uat-x', orchestrator: 'refreshUat' });
    expect(s.waiting.map(idOf)).toEqual(['refresh-uat-x']);
  });
});

describe('the lane hears that its work ended', () => {
  const running = merge('1.0.0', 'a');
  const ended = (over: Record<string, unknown> = {}) => ({
    workEnded: idOf(running),
    outcome: 'Succeeded',
    token: 't-1',
    ...over,
  });

  it('the end of the running work with its token: recorded with the outcome, done, nothing runs', () => {
    const s = lane({ running, token: 't-1', waiting: [merge('1.0.1', 'b')], done: ['x'] });
    takeLaneEvent(s, ended());
    expect(s.running).toBeUndefined();
    expect(s.token).toBeUndefined();
    expect(s.done).toEqual(['x', idOf(running)]);
    expect(s.waiting.map(idOf)).toEqual([idOf(merge('1.0.1', 'b'))]);
    expect(s.notes).toEqual([
      {
        decision: 'deploy-finished',
        reason: 'deploy of 1.0.0 (aaaaaaa) ended: Succeeded',
        sha: 'a'.repeat(40),
        version: '1.0.0',
        deliveryId: 'delivery-1.0.0',
        instanceId: idOf(running),
        lane: 'lane-uat',
        outcome: 'Succeeded',
      },
    ]);
  });

  it('a failed end is recorded failed, with its error or a default reason', () => {
    const a = lane({ running, token: 't-1' });
    takeLaneEvent(
      a,
      ended({ outcome: 'failed', error: '[DEPLOY.MIGRATION_FAILED] column "x" does not exist' }),
    );
    expect(decisions(a)).toEqual([
      [
        'deploy-finished',
        idOf(running),
        'deploy of 1.0.0 (aaaaaaa) failed: [DEPLOY.MIGRATION_FAILED] column "x" does not exist',
      ],
    ]);
    expect(a.notes[0].outcome).toBe('failed');
    const b = lane({ running, token: 't-1' });
    takeLaneEvent(b, ended({ outcome: 'failed' }));
    expect(b.notes[0].reason).toBe('deploy of 1.0.0 (aaaaaaa) failed: the deploy orchestration failed');
  });

  it.each([
    ['another work id (a repeated, stale end)', { workEnded: 'deploy-uat-0.9.0-999999999999' }],
    ['a wrong token', { token: 't-2' }],
    ['no token', { token: undefined }],
  ])('an end with %s changes nothing', (_what, over) => {
    const s = lane({ running, token: 't-1', done: ['x'] });
    takeLaneEvent(s, ended(over));
    expect(s).toEqual(lane({ running, token: 't-1', done: ['x'] }));
  });

  it('an end while nothing runs changes nothing', () => {
    const s = lane({ done: ['x'] });
    takeLaneEvent(s, ended({ token: undefined }));
    expect(s).toEqual(lane({ done: ['x'] }));
  });

  it('keeps the last 20 work ids done, the one that ended last at the end, never twice', () => {
    const done = Array.from({ length: 20 }, (_, i) => `w-${i}`);
    const s = lane({ running, token: 't-1', done: [...done.slice(0, 5), idOf(running), ...done.slice(5)] });
    takeLaneEvent(s, ended());
    expect(s.done).toHaveLength(20);
    expect(s.done.at(-1)).toBe(idOf(running));
    expect(s.done.filter((d) => d === idOf(running))).toHaveLength(1);
    expect(s.done[0]).toBe('w-1');
  });
});

describe('the lane’s decisions and work ids', () => {
  it('a merge runs as deploy-<env>-<version>-<sha12>; other work under the instance id it names', () => {
    expect(laneWorkId({ environment: 'prod' }, merge('1.2.3', 'f'))).toBe(
      `deploy-prod-1.2.3-${'f'.repeat(12)}`,
    );
    expect(laneWorkId({ environment: 'prod' }, refresh('r9'))).toBe(refresh('r9').instanceId);
  });

  it('a decision names the lane, the request and the work id, plus what the caller adds', () => {
    expect(
      laneDecision({ environment: 'uat', lane: 'lane-uat' }, 'duplicate', 'why', merge('2.0.0', 'e'), {
        x: 1,
      }),
    ).toEqual({
      decision: 'duplicate',
      reason: 'why',
      sha: 'e'.repeat(40),
      version: '2.0.0',
      deliveryId: 'delivery-2.0.0',
      instanceId: `deploy-uat-2.0.0-${'e'.repeat(12)}`,
      lane: 'lane-uat',
      x: 1,
    });
  });
});
