import {
  modulesToUpdate,
  needsRollback,
  outcomeOfFailure,
  reasonOf,
  registryOf,
  repositoryOf,
  shouldRetry,
  tagOf,
  validateDeployInput,
} from '../../shared/domain/deploy-plan';
import { PipelineError } from '../../shared/domain/errors';
import { opsError, parseOpsJson } from '../../functions/activities/deploy';

describe('deploy plan', () => {
  it('classifies outcomes: before the stop Failed, after it RolledBack or NeedsAttention', () => {
    for (const s of ['prepare', 'preflight', 'wait-image', 'backup', 'pull'] as const) {
      expect(needsRollback(s)).toBe(false);
      expect(outcomeOfFailure(s, undefined)).toBe('Failed');
    }
    for (const s of ['stop', 'migrate', 'start', 'health'] as const) {
      expect(needsRollback(s)).toBe(true);
      expect(outcomeOfFailure(s, true)).toBe('RolledBack');
      expect(outcomeOfFailure(s, false)).toBe('NeedsAttention');
    }
  });

  it('retries only transient codes, and never a migration', () => {
    expect(shouldRetry('backup', new Error('[BLOB.THROTTLED] 503'))).toBe(true);
    expect(shouldRetry('preflight', new Error('Activity failed: [SSH.CONNECT] refused'))).toBe(true);
    expect(shouldRetry('pull', new Error('[REGISTRY.UNAVAILABLE] 502'))).toBe(true);
    expect(shouldRetry('migrate', new Error('[SSH.DISCONNECTED] dropped'))).toBe(false);
    expect(shouldRetry('migrate', new Error('[DEPLOY.MIGRATION_FAILED] x'))).toBe(false);
    expect(shouldRetry('backup', new Error('[BACKUP.FAILED] pg_dump'))).toBe(false);
  });

  it('picks changed modules from the diff, all when unknown or forced', () => {
    expect(
      modulesToUpdate([
        'addons/sale_x/models/a.py',
        'addons/sale_x/views/v.xml',
        'stock_y/__manifest__.py',
        'README.md',
        'docker/Dockerfile',
        '.github/workflows/x.yml',
      ]),
    ).toBe('sale_x,stock_y');
    expect(modulesToUpdate(['README.md'])).toBe('');
    expect(modulesToUpdate(undefined)).toBe('all');
    expect(modulesToUpdate(['addons/a/x.py'], { force: true })).toBe('all');
  });

  it('splits image references', () => {
    expect(tagOf('reg.io:5000/acme/odoo-mta:uat-v1.2.3')).toBe('uat-v1.2.3');
    expect(tagOf('reg.io:5000/acme/odoo-mta')).toBeUndefined();
    expect(repositoryOf('reg.io:5000/acme/odoo-mta:uat-v1.2.3')).toBe('acme/odoo-mta');
    expect(repositoryOf('127.0.0.1:5000/odoo-mta:uat-v1')).toBe('odoo-mta');
    expect(repositoryOf('odoo-mta:uat-v1')).toBe('odoo-mta');
  });

  it('names the registry an image is pulled from (Docker Hub when the first part is no host)', () => {
    expect(registryOf('reg.io:5000/acme/odoo-mta:uat-v1.2.3')).toBe('reg.io:5000');
    expect(registryOf('Reg.IO/acme/odoo-mta@sha256:' + 'a'.repeat(64))).toBe('reg.io');
    expect(registryOf('localhost/odoo-mta:uat-v1')).toBe('localhost');
    expect(registryOf('acme/odoo-mta:uat-v1')).toBe('');
    expect(registryOf('odoo-mta:uat-v1')).toBe('');
    // same repository path, other registry: not the same image
    expect(registryOf('evil.example/acme/odoo-mta:prod-v1')).not.toBe(
      registryOf('reg.io/acme/odoo-mta:uat-v1'),
    );
  });

  it('validates the input with clear reasons', () => {
    expect(
      validateDeployInput({
        environment: 'uat',
        version: '1.2.3',
        sha: 'a'.repeat(40),
        imageRef: 'r/o:uat-v1.2.3',
      }),
    ).toEqual([]);
    expect(validateDeployInput(null)).toEqual(['the deploy input must be an object']);
    expect(
      validateDeployInput({ environment: 'UAT', version: '', sha: 'xyz', imageRef: 'a b' }),
    ).toHaveLength(4);
  });

  it('keeps the coded part of wrapped activity errors', () => {
    expect(
      reasonOf(new Error('Activity function deployMigrate failed: [DEPLOY.MIGRATION_FAILED] boom\n at x')),
    ).toBe('[DEPLOY.MIGRATION_FAILED] boom');
    expect(reasonOf('x'.repeat(900)).length).toBe(500);
  });

  it('reads odoo-ops results and maps exit codes to error codes', () => {
    expect(parseOpsJson('noise\n{"verb":"stop","ok":true}\n')).toEqual({ verb: 'stop', ok: true });
    expect(parseOpsJson('no json')).toBeUndefined();
    const e = opsError('migrate', { code: 5, json: { message: 'migration failed' }, stderrTail: '' });
    expect(e.message).toMatch(/^\[DEPLOY.MIGRATION_FAILED\]/);
    expect(e.retryable).toBe(false);
    expect(opsError('status', { code: 3, json: {}, stderrTail: 'lock' }).retryable).toBe(true);
    expect(new PipelineError('X.Y', 'z').message).toBe('[X.Y] z');
  });
});
