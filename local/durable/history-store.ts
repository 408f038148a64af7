/**
 * SQLite persistence of the embedded Durable engine (better-sqlite3, WAL). One database holds, per
 * instance: its row (status, input/output, custom status, the engine's task model), its history, its
 * inbox (work waiting for the next episode: start, task/timer/sub-orchestration completions, raised
 * events, terminate), its pending activity work items and its durable timers. Every state change is
 * one transaction, committed before its side effect (running an activity, arming a timer) starts, so
 * a restart after SIGKILL resumes exactly from the database. WAL with synchronous=NORMAL survives a
 * process kill (the OS keeps the written pages); only a power loss could drop the last transaction.
 */
import Database from 'better-sqlite3';

export interface InstanceRow {
  seq: number;
  instance_id: string;
  name: string;
  generation: number;
  status: string;
  input: string | null;
  output: string | null;
  custom_status: string | null;
  failure: string | null;
  created_at: number;
  updated_at: number;
  last_ts: number;
  parent_instance_id: string | null;
  parent_task_id: number | null;
  parent_generation: number | null;
  model: string;
}

export interface InboxRow {
  id: number;
  instance_id: string;
  generation: number | null;
  kind: string;
  event: string;
  created_at: number;
}

export interface ActivityRow {
  id: number;
  instance_id: string;
  generation: number;
  task_id: number;
  name: string;
  input: string | null;
  /** JSON failure to report without running the activity (retry timeout expired) */
  immediate_failure: string | null;
  created_at: number;
}

export interface TimerRow {
  id: number;
  instance_id: string;
  generation: number;
  task_id: number;
  fire_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS instances (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  input TEXT,
  output TEXT,
  custom_status TEXT,
  failure TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  parent_instance_id TEXT,
  parent_task_id INTEGER,
  parent_generation INTEGER,
  model TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_status ON instances(status);
CREATE TABLE IF NOT EXISTS history (
  instance_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  event TEXT NOT NULL,
  PRIMARY KEY (instance_id, idx)
);
CREATE TABLE IF NOT EXISTS inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_id TEXT NOT NULL,
  generation INTEGER,
  kind TEXT NOT NULL,
  event TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox(instance_id, id);
CREATE TABLE IF NOT EXISTS activities (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  task_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  input TEXT,
  immediate_failure TEXT,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS timers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  task_id INTEGER NOT NULL,
  fire_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export const STORE_FORMAT_VERSION = '1';

export class HistoryStore {
  readonly db: Database.Database;

  constructor(dbPath: string) {
    this.db = new Database(dbPath);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('format') as
      | { value: string }
      | undefined;
    if (!v)
      this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('format', STORE_FORMAT_VERSION);
    else if (v.value !== STORE_FORMAT_VERSION) {
      throw new Error(
        `[DURABLE.STORE_FORMAT] durable store ${dbPath} has format ${v.value}, this engine reads format ${STORE_FORMAT_VERSION}; move the file away to start fresh.`,
      );
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  getInstance(id: string): InstanceRow | undefined {
    return this.db.prepare('SELECT * FROM instances WHERE instance_id = ?').get(id) as
      | InstanceRow
      | undefined;
  }

  insertInstance(r: Omit<InstanceRow, 'seq'>): void {
    this.db
      .prepare(
        `INSERT INTO instances (instance_id, name, generation, status, input, output, custom_status, failure, created_at, updated_at, last_ts, parent_instance_id, parent_task_id, parent_generation, model)
         VALUES (@instance_id, @name, @generation, @status, @input, @output, @custom_status, @failure, @created_at, @updated_at, @last_ts, @parent_instance_id, @parent_task_id, @parent_generation, @model)`,
      )
      .run(r);
  }

  updateInstance(id: string, fields: Partial<Omit<InstanceRow, 'seq' | 'instance_id'>>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    const set = keys.map((k) => `${k} = @${k}`).join(', ');
    this.db
      .prepare(`UPDATE instances SET ${set} WHERE instance_id = @instance_id`)
      .run({ ...fields, instance_id: id });
  }

  /** Deletes everything of an instance. Returns 1 if the instance existed. */
  deleteInstance(id: string): number {
    const n = this.db.prepare('DELETE FROM instances WHERE instance_id = ?').run(id).changes;
    this.db.prepare('DELETE FROM history WHERE instance_id = ?').run(id);
    this.db.prepare('DELETE FROM inbox WHERE instance_id = ?').run(id);
    this.db.prepare('DELETE FROM activities WHERE instance_id = ?').run(id);
    this.db.prepare('DELETE FROM timers WHERE instance_id = ?').run(id);
    return n;
  }

  listInstances(where: {
    statuses?: string[];
    createdFrom?: number;
    createdTo?: number;
    afterSeq?: number;
    limit: number;
  }): InstanceRow[] {
    const cond: string[] = [];
    const args: unknown[] = [];
    if (where.statuses && where.statuses.length > 0) {
      cond.push(`status IN (${where.statuses.map(() => '?').join(',')})`);
      args.push(...where.statuses);
    }
    if (where.createdFrom !== undefined) {
      cond.push('created_at >= ?');
      args.push(where.createdFrom);
    }
    if (where.createdTo !== undefined) {
      cond.push('created_at <= ?');
      args.push(where.createdTo);
    }
    if (where.afterSeq !== undefined) {
      cond.push('seq > ?');
      args.push(where.afterSeq);
    }
    const sql = `SELECT * FROM instances ${cond.length ? 'WHERE ' + cond.join(' AND ') : ''} ORDER BY seq LIMIT ?`;
    return this.db.prepare(sql).all(...args, where.limit) as InstanceRow[];
  }

  instancesWithWork(): string[] {
    return (
      this.db.prepare('SELECT DISTINCT instance_id FROM inbox ORDER BY instance_id').all() as Array<{
        instance_id: string;
      }>
    ).map((r) => r.instance_id);
  }

  // ---- history
  history(id: string): string[] {
    return (
      this.db.prepare('SELECT event FROM history WHERE instance_id = ? ORDER BY idx').all(id) as Array<{
        event: string;
      }>
    ).map((r) => r.event);
  }

  appendHistory(id: string, events: unknown[]): void {
    const row = this.db
      .prepare('SELECT COALESCE(MAX(idx), -1) AS m FROM history WHERE instance_id = ?')
      .get(id) as { m: number };
    const ins = this.db.prepare('INSERT INTO history (instance_id, idx, event) VALUES (?, ?, ?)');
    let idx = row.m + 1;
    for (const e of events) ins.run(id, idx++, JSON.stringify(e));
  }

  clearHistory(id: string): void {
    this.db.prepare('DELETE FROM history WHERE instance_id = ?').run(id);
  }

  // ---- inbox
  addInbox(instanceId: string, generation: number | null, kind: string, event: unknown, now: number): number {
    return Number(
      this.db
        .prepare(
          'INSERT INTO inbox (instance_id, generation, kind, event, created_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(instanceId, generation, kind, JSON.stringify(event), now).lastInsertRowid,
    );
  }

  inbox(instanceId: string): InboxRow[] {
    return this.db
      .prepare('SELECT * FROM inbox WHERE instance_id = ? ORDER BY id')
      .all(instanceId) as InboxRow[];
  }

  deleteInbox(id: number): void {
    this.db.prepare('DELETE FROM inbox WHERE id = ?').run(id);
  }

  deleteInboxOf(instanceId: string, kinds?: string[]): void {
    if (!kinds) this.db.prepare('DELETE FROM inbox WHERE instance_id = ?').run(instanceId);
    else
      this.db
        .prepare(`DELETE FROM inbox WHERE instance_id = ? AND kind IN (${kinds.map(() => '?').join(',')})`)
        .run(instanceId, ...kinds);
  }

  // ---- activities
  addActivity(a: Omit<ActivityRow, 'id'>): number {
    return Number(
      this.db
        .prepare(
          'INSERT INTO activities (instance_id, generation, task_id, name, input, immediate_failure, created_at) VALUES (@instance_id, @generation, @task_id, @name, @input, @immediate_failure, @created_at)',
        )
        .run(a).lastInsertRowid,
    );
  }

  getActivity(id: number): ActivityRow | undefined {
    return this.db.prepare('SELECT * FROM activities WHERE id = ?').get(id) as ActivityRow | undefined;
  }

  allActivities(): ActivityRow[] {
    return this.db.prepare('SELECT * FROM activities ORDER BY id').all() as ActivityRow[];
  }

  deleteActivity(id: number): number {
    return this.db.prepare('DELETE FROM activities WHERE id = ?').run(id).changes;
  }

  deleteActivitiesOf(instanceId: string): void {
    this.db.prepare('DELETE FROM activities WHERE instance_id = ?').run(instanceId);
  }

  // ---- timers
  addTimer(t: Omit<TimerRow, 'id'>): number {
    return Number(
      this.db
        .prepare(
          'INSERT INTO timers (instance_id, generation, task_id, fire_at) VALUES (@instance_id, @generation, @task_id, @fire_at)',
        )
        .run(t).lastInsertRowid,
    );
  }

  getTimer(id: number): TimerRow | undefined {
    return this.db.prepare('SELECT * FROM timers WHERE id = ?').get(id) as TimerRow | undefined;
  }

  allTimers(): TimerRow[] {
    return this.db.prepare('SELECT * FROM timers ORDER BY fire_at, id').all() as TimerRow[];
  }

  timersOf(instanceId: string): TimerRow[] {
    return this.db
      .prepare('SELECT * FROM timers WHERE instance_id = ? ORDER BY id')
      .all(instanceId) as TimerRow[];
  }

  deleteTimer(id: number): number {
    return this.db.prepare('DELETE FROM timers WHERE id = ?').run(id).changes;
  }

  deleteTimerByTask(instanceId: string, generation: number, taskId: number): number[] {
    const rows = this.db
      .prepare('SELECT id FROM timers WHERE instance_id = ? AND generation = ? AND task_id = ?')
      .all(instanceId, generation, taskId) as Array<{ id: number }>;
    for (const r of rows) this.deleteTimer(r.id);
    return rows.map((r) => r.id);
  }

  deleteTimersOf(instanceId: string): number[] {
    const rows = this.db.prepare('SELECT id FROM timers WHERE instance_id = ?').all(instanceId) as Array<{
      id: number;
    }>;
    this.db.prepare('DELETE FROM timers WHERE instance_id = ?').run(instanceId);
    return rows.map((r) => r.id);
  }
}
