/**
 * One validated schema for every setting the app reads.
 *
 * Each setting has a name (the same in local.settings.example.json, in the Bicep app settings and in
 * README's configuration table), a parser, a default (or none), whether it is a secret, and where it is
 * needed. `loadConfig()` validates all of them at once and fails naming every bad key and the form it
 * expects. Orchestrators never read configuration: activities and triggers do, and pass values in.
 */
import { z } from 'zod';
import { registerSecret as defaultRegister } from './log';
import { APPROVERS_EXAMPLE, parseApprovers } from './domain/identity';

export type SettingArea =
  | 'host'
  | 'storage'
  | 'queue'
  | 'github'
  | 'gate'
  | 'registry'
  | 'targets'
  | 'deploy'
  | 'approvals'
  | 'slack'
  | 'refresh'
  | 'odoosh'
  | 'retention'
  | 'monitoring';

export interface SettingSpec<T = unknown> {
  area: SettingArea;
  /** what it is for, in one sentence (README table) */
  description: string;
  /** the expected form, used in error messages */
  form: string;
  schema: z.ZodType<T>;
  /** default when unset; undefined = no default */
  default?: string;
  /** a secret: never logged; in Azure a Key Vault reference */
  secret?: boolean;
  /** required when running in Azure (the Bicep template must set it) */
  requiredInAzure?: boolean;
  /** what is disabled when this optional setting is unset */
  disables?: string;
}

const str = z.string().min(1);
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
const bool = z
  .string()
  .transform((v) => v.trim().toLowerCase())
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const url = z.string().url();
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const secret = z.string().min(16);

function s<const S extends SettingSpec<any>>(spec: S): S {
  return spec;
}

/** Every setting, in README order. */
export const SETTINGS = {
  // --- host -------------------------------------------------------------------------------------
  PIPELINE_RUNTIME: s({
    area: 'host',
    description:
      'Where the app runs: `azure` (Functions host, Service Bus, managed identity) or `local` (embedded host).',
    form: 'azure | local',
    schema: z.enum(['azure', 'local']),
    default: 'local',
  }),
  PUBLIC_BASE_URL: s({
    area: 'host',
    description: 'Public base URL of the function app, used in approval/rollback links and the dashboard.',
    form: 'an absolute http(s) URL',
    schema: url,
    default: 'http://127.0.0.1:7071',
    requiredInAzure: true,
  }),
  LOCAL_DATA_DIR: s({
    area: 'host',
    description: 'Embedded host only: folder for history, queue, Azurite data, keys and generated secrets.',
    form: 'a folder path',
    schema: str,
    default: '.data',
  }),
  LOCAL_HOST_PORT: s({
    area: 'host',
    description: 'Embedded host only: HTTP port (the Functions host default is 7071).',
    form: 'an integer 0-65535',
    schema: int(0, 65535),
    default: '7071',
  }),
  LOG_LEVEL: s({
    area: 'host',
    description: 'Minimum log level.',
    form: 'debug | info | warn | error',
    schema: z.enum(['debug', 'info', 'warn', 'error']),
    default: 'info',
  }),
  TASK_HUB_NAME: s({
    area: 'host',
    description: 'Durable Functions task hub name (host.json reads it as %TASK_HUB_NAME%).',
    form: 'letters and digits, 3-45 characters',
    schema: z.string().regex(/^[A-Za-z][A-Za-z0-9]{2,44}$/),
    default: 'odoomta',
  }),
  DISPLAY_TIME_ZONE: s({
    area: 'host',
    description:
      'Time zone in which the status page and `odoo-pipeline status` show times (absolute and relative), e.g. Europe/Brussels.',
    form: 'an IANA time zone name (e.g. UTC, Europe/Brussels)',
    schema: z.string().refine(
      (tz) => {
        try {
          new Intl.DateTimeFormat('en-GB', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      },
      { message: 'not an IANA time zone name' },
    ),
    default: 'UTC',
  }),
  STATUS_READ_KEY: s({
    area: 'host',
    description:
      'Read-only key of the status page: `/api/dashboard?key=<it>` (HTML, or JSON with `format=json`) shows the status and nothing else — it cannot request deploys, approve or refresh. Unset: the page answers with a page saying it is closed.',
    form: 'a string of at least 32 characters',
    schema: z.string().min(32),
    secret: true,
    disables: 'the status page /api/dashboard',
  }),

  // --- storage ----------------------------------------------------------------------------------
  BACKUP_STORAGE_CONNECTION: s({
    area: 'storage',
    description:
      'Connection string of the backup/ledger storage (local: Azurite, set by the embedded host). In Azure leave unset and set BACKUP_STORAGE_ACCOUNT_URL (managed identity).',
    form: 'an Azure Storage connection string',
    schema: str,
    secret: true,
  }),
  BACKUP_STORAGE_ACCOUNT_URL: s({
    area: 'storage',
    description: 'Blob endpoint of the backup storage account, reached with the managed identity.',
    form: 'https://<account>.blob.core.windows.net',
    schema: url,
    requiredInAzure: true,
  }),
  BACKUP_CONTAINER: s({
    area: 'storage',
    description: 'Blob container for backups (`<env>/<timestamp>-<version>/...`).',
    form: 'a container name (3-63 lowercase letters, digits, dashes)',
    schema: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/),
    default: 'backups',
  }),
  LEDGER_CONTAINER: s({
    area: 'storage',
    description: 'Blob container for the environment ledger, intake decisions and deploy logs.',
    form: 'a container name (3-63 lowercase letters, digits, dashes)',
    schema: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/),
    default: 'ledger',
  }),

  // --- queue ------------------------------------------------------------------------------------
  ServiceBusConnection__fullyQualifiedNamespace: s({
    area: 'queue',
    description:
      'Service Bus namespace host (identity-based connection of the deploy queue trigger and sender).',
    form: '<namespace>.servicebus.windows.net',
    schema: z.string().regex(/^[A-Za-z0-9.-]+$/),
    requiredInAzure: true,
  }),
  DEPLOY_QUEUE_NAME: s({
    area: 'queue',
    description: 'Service Bus queue (sessions + duplicate detection) carrying deploy requests.',
    form: 'a queue name',
    schema: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/),
    default: 'deploy-requests',
  }),
  LANE_RETRY_FIRST_SECONDS: s({
    area: 'queue',
    description:
      "The deploy lane's own steps (starting a piece of work, reporting its end) when the durable client fails (a storage outage): first retry delay, doubling each attempt, 6 attempts (at 10: about 5 minutes, then the work is recorded failed: could not start it). Stamped on each request routed to the lane; requests routed before it was set use 10.",
    form: 'an integer 1-600',
    schema: int(1, 600),
    default: '10',
  }),
  LOCAL_SERVICEBUS_URL: s({
    area: 'queue',
    description:
      "Embedded host only: base URL of the local queue's Service Bus REST send endpoint (`POST {url}/{queue}/messages`). Unset: http://127.0.0.1:<LOCAL_HOST_PORT>/_local/servicebus.",
    form: 'an absolute http(s) URL',
    schema: url,
  }),

  // --- github -----------------------------------------------------------------------------------
  GITHUB_WEBHOOK_SECRET: s({
    area: 'github',
    description: 'Secret of the GitHub webhook (HMAC-SHA256). Local: generated on first start.',
    form: 'a string of at least 16 characters',
    schema: secret,
    secret: true,
    requiredInAzure: true,
  }),
  GITHUB_WEBHOOK_SECRET_PREVIOUS: s({
    area: 'github',
    description: 'Previous webhook secret, still accepted during a rotation.',
    form: 'a string of at least 16 characters',
    schema: secret,
    secret: true,
    disables: 'webhook secret rotation',
  }),
  GITHUB_API_URL: s({
    area: 'github',
    description: 'GitHub REST API base URL (GitHub Enterprise: https://<host>/api/v3).',
    form: 'an absolute URL',
    schema: url,
    default: 'https://api.github.com',
  }),
  GITHUB_REPOSITORY: s({
    area: 'github',
    description: 'The Odoo repository whose merges are deployed.',
    form: 'owner/name',
    schema: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/),
    requiredInAzure: true,
    disables: 'the intake (every webhook is ignored) and GitHub deployment statuses',
  }),
  GITHUB_TOKEN: s({
    area: 'github',
    description:
      'Token for GitHub API reads/writes (statuses, deployments, refs). Or use a GitHub App; in Azure one of the two is required.',
    form: 'a GitHub token',
    schema: str,
    secret: true,
    disables: 'GitHub API calls unless a GitHub App is configured',
  }),
  GITHUB_APP_ID: s({
    area: 'github',
    description: 'GitHub App id (alternative to GITHUB_TOKEN).',
    form: 'a positive integer',
    schema: int(1, Number.MAX_SAFE_INTEGER),
  }),
  GITHUB_APP_INSTALLATION_ID: s({
    area: 'github',
    description: 'GitHub App installation id.',
    form: 'a positive integer',
    schema: int(1, Number.MAX_SAFE_INTEGER),
  }),
  GITHUB_APP_PRIVATE_KEY: s({
    area: 'github',
    description: 'GitHub App private key (PEM).',
    form: 'a PEM private key',
    schema: str,
    secret: true,
  }),
  GITHUB_DEFAULT_BRANCH: s({
    area: 'github',
    description: 'Branch whose merges are deployed to UAT.',
    form: 'a branch name',
    schema: str,
    default: 'main',
  }),
  GITHUB_TRIGGER_EVENT: s({
    area: 'github',
    description:
      'Which event starts a deploy: `push` to the default branch, or `workflow_run` success of the image build.',
    form: 'push | workflow_run',
    schema: z.enum(['push', 'workflow_run']),
    default: 'workflow_run',
  }),
  WEBHOOK_DUPLICATE_WAIT_SECONDS: s({
    area: 'github',
    description:
      'How long a concurrent copy of a webhook delivery waits for the first copy\'s answer before answering 202 "processing" (keep under GitHub\'s 10 s).',
    form: 'an integer 0-60',
    schema: int(0, 60),
    default: '8',
  }),
  GITHUB_IMAGE_WORKFLOW: s({
    area: 'github',
    description: 'Name of the Odoo repository workflow that builds and pushes the image.',
    form: 'a workflow name',
    schema: str,
    default: 'build-image',
  }),
  GITHUB_IMAGE_WORKFLOW_PATH: s({
    area: 'github',
    description:
      'File of the image build workflow in the Odoo repository (`workflow_run.path`). A `workflow_run` counts only from this file, started by a push, for a commit on the default branch: the name alone is not trusted.',
    form: 'a path under .github/workflows/',
    schema: z
      .string()
      .regex(
        /^\.github\/workflows\/[^/\s]+\.ya?ml$/,
        'must be a file under .github/workflows/ (.yml or .yaml)',
      ),
    default: '.github/workflows/build-image.yml',
  }),

  // --- gate -------------------------------------------------------------------------------------
  COVERAGE_CONTEXT: s({
    area: 'gate',
    description: 'Commit status context (or check run name) carrying the coverage percentage.',
    form: 'a status context',
    schema: str,
    default: 'coverage',
  }),
  COVERAGE_SOURCE_LOGIN: s({
    area: 'gate',
    description:
      "Login of the account that posts the coverage commit status (the Odoo repository's CI; `github-actions[bot]` when ci.yml posts with GITHUB_TOKEN, `<app-slug>[bot]` for a GitHub App). A coverage status from anyone else blocks the merge.",
    form: 'a GitHub login',
    schema: z
      .string()
      .regex(
        /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$/,
        'must be a GitHub login, e.g. github-actions[bot]',
      ),
    default: 'github-actions[bot]',
  }),
  COVERAGE_SOURCE_APP_ID: s({
    area: 'gate',
    description:
      'Id of the GitHub App whose coverage check run counts (check run `app.id`; GitHub Actions is 15368). Unset: coverage check runs are not trusted, only the commit status.',
    form: 'a positive integer',
    schema: int(1, Number.MAX_SAFE_INTEGER),
  }),
  COVERAGE_MIN: s({
    area: 'gate',
    description: 'Minimum coverage percentage for a deploy.',
    form: 'a number 0-100',
    schema: num(0, 100),
    default: '80',
  }),
  COVERAGE_TOLERANCE: s({
    area: 'gate',
    description: 'Allowed drop (percentage points) below the coverage of the release UAT runs now.',
    form: 'a number 0-100',
    schema: num(0, 100),
    default: '0',
  }),
  COVERAGE_WAIT_MINUTES: s({
    area: 'gate',
    description: 'How long to wait for a missing or pending coverage status before blocking.',
    form: 'an integer 1-10080',
    schema: int(1, 10080),
    default: '30',
  }),
  GATE_STATUS_CONTEXT: s({
    area: 'gate',
    description: 'Context of the commit status the gate posts when it blocks or passes a merge.',
    form: 'a status context',
    schema: str,
    default: 'deploy/uat',
  }),

  // --- registry ---------------------------------------------------------------------------------
  REGISTRY_KIND: s({
    area: 'registry',
    description:
      'Registry API flavour: `oci` (distribution API), `acr` (Azure Container Registry), `dockerhub`.',
    form: 'oci | acr | dockerhub',
    schema: z.enum(['oci', 'acr', 'dockerhub']),
    default: 'oci',
  }),
  REGISTRY_URL: s({
    area: 'registry',
    description: 'Registry base URL (local sandbox: http://127.0.0.1:5000).',
    form: 'an absolute URL',
    schema: url,
    requiredInAzure: true,
    disables: 'image checks, retag and retention',
  }),
  REGISTRY_REPOSITORY: s({
    area: 'registry',
    description: 'Image repository of the Odoo image (tags `uat-vX.Y.Z`, `prod-vX.Y.Z`).',
    form: 'a repository path',
    schema: z.string().regex(/^[a-z0-9]+(?:[._/-][a-z0-9]+)*$/),
    default: 'odoo-mta',
  }),
  REGISTRY_USERNAME: s({
    area: 'registry',
    description: 'Registry user (unset: anonymous, or managed identity for ACR).',
    form: 'a user name',
    schema: str,
  }),
  REGISTRY_PASSWORD: s({
    area: 'registry',
    description: 'Registry password or token.',
    form: 'a string',
    schema: str,
    secret: true,
  }),

  // --- targets ----------------------------------------------------------------------------------
  UAT_SSH_HOST: s({
    area: 'targets',
    description: 'UAT VM address reachable over SSH (private IP in Azure).',
    form: 'a host name or IP',
    schema: str,
    requiredInAzure: true,
    disables: 'deploys to UAT',
  }),
  UAT_SSH_PORT: s({
    area: 'targets',
    description: 'UAT VM SSH port.',
    form: 'an integer 1-65535',
    schema: int(1, 65535),
    default: '22',
  }),
  UAT_SSH_USER: s({
    area: 'targets',
    description: 'UAT VM SSH user that may run `odoo-ops`.',
    form: 'a user name',
    schema: str,
    default: 'odoo-ops',
  }),
  UAT_SSH_HOST_KEY: s({
    area: 'targets',
    description:
      'Pinned SSH host key of the UAT VM (`SHA256:...` fingerprint); unknown or changed keys are refused.',
    form: 'SHA256:<base64>',
    schema: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/),
    requiredInAzure: true,
  }),
  UAT_URL: s({
    area: 'targets',
    description: 'Public URL of UAT Odoo (health checks, links, web.base.url after refresh).',
    form: 'an absolute URL',
    schema: url,
    requiredInAzure: true,
  }),
  UAT_VM_RESOURCE_ID: s({
    area: 'targets',
    description: 'ARM resource id of the UAT VM (power state, start when deallocated).',
    form: '/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>',
    schema: z
      .string()
      .regex(
        /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/virtualMachines\/[^/]+$/i,
      ),
    disables: 'starting a deallocated UAT VM',
  }),
  PROD_SSH_HOST: s({
    area: 'targets',
    description: 'PROD VM address reachable over SSH.',
    form: 'a host name or IP',
    schema: str,
    requiredInAzure: true,
    disables: 'deploys to PROD',
  }),
  PROD_SSH_PORT: s({
    area: 'targets',
    description: 'PROD VM SSH port.',
    form: 'an integer 1-65535',
    schema: int(1, 65535),
    default: '22',
  }),
  PROD_SSH_USER: s({
    area: 'targets',
    description: 'PROD VM SSH user.',
    form: 'a user name',
    schema: str,
    default: 'odoo-ops',
  }),
  PROD_SSH_HOST_KEY: s({
    area: 'targets',
    description: 'Pinned SSH host key of the PROD VM.',
    form: 'SHA256:<base64>',
    schema: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/),
    requiredInAzure: true,
  }),
  PROD_URL: s({
    area: 'targets',
    description: 'Public URL of PROD Odoo.',
    form: 'an absolute URL',
    schema: url,
    requiredInAzure: true,
  }),
  PROD_VM_RESOURCE_ID: s({
    area: 'targets',
    description: 'ARM resource id of the PROD VM (power state, data-disk snapshot).',
    form: '/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>',
    schema: z
      .string()
      .regex(
        /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/virtualMachines\/[^/]+$/i,
      ),
    disables: 'disk snapshots before PROD deploys',
  }),
  SSH_PRIVATE_KEY: s({
    area: 'targets',
    description: 'Private key (OpenSSH or PEM) the pipeline uses on both VMs. Key Vault reference in Azure.',
    form: 'a PEM/OpenSSH private key',
    schema: z.string().regex(/-----BEGIN [A-Z ]*PRIVATE KEY-----/),
    secret: true,
    requiredInAzure: true,
  }),
  SSH_CONNECT_TIMEOUT_SECONDS: s({
    area: 'targets',
    description: 'SSH connect timeout.',
    form: 'an integer 1-600',
    schema: int(1, 600),
    default: '20',
  }),
  SSH_COMMAND_TIMEOUT_SECONDS: s({
    area: 'targets',
    description:
      'Upper bound for one remote command (migrations included); host.json functionTimeout is above the maximum.',
    form: 'an integer 1-14400',
    schema: int(1, 14400),
    default: '3600',
  }),
  ARM_ENDPOINT: s({
    area: 'targets',
    description: 'Azure Resource Manager endpoint.',
    form: 'an absolute URL',
    schema: url,
    default: 'https://management.azure.com',
  }),
  VM_AUTO_START: s({
    area: 'targets',
    description: 'Start a deallocated VM before deploying to it.',
    form: 'true | false',
    schema: bool,
    default: 'true',
  }),

  // --- deploy -----------------------------------------------------------------------------------
  MIN_FREE_DISK_GB: s({
    area: 'deploy',
    description: 'Preflight: minimum free disk on the VM.',
    form: 'a number 0-100000',
    schema: num(0, 100000),
    default: '5',
  }),
  IMAGE_WAIT_MINUTES: s({
    area: 'deploy',
    description: 'How long a deploy waits for its image tag to appear in the registry.',
    form: 'an integer 0-1440',
    schema: int(0, 1440),
    default: '30',
  }),
  IMAGE_POLL_SECONDS: s({
    area: 'deploy',
    description: 'While waiting for the image tag: seconds between registry checks (durable timer).',
    form: 'an integer 1-3600',
    schema: int(1, 3600),
    default: '30',
  }),
  VM_JOB_POLL_SECONDS: s({
    area: 'deploy',
    description:
      'Long work on a VM (migrations) runs as a detached `odoo-ops job`: seconds between two status checks of the job (durable timer).',
    form: 'an integer 1-600',
    schema: int(1, 600),
    default: '15',
  }),
  VM_JOB_DEADLINE_MINUTES: s({
    area: 'deploy',
    description:
      'How long a deploy waits for a VM job (the backup, the migration) to end; past it the step fails with OPS.JOB_DEADLINE (the job is not killed: the rollback waits for the VM lock). Also how long the upload SAS handed to a backup job is valid.',
    form: 'an integer 1-1440',
    schema: int(1, 1440),
    default: '180',
  }),
  DEPLOY_RETRY_FIRST_SECONDS: s({
    area: 'deploy',
    description:
      'Deploy steps: first retry delay of a transient failure (SSH connect, registry 5xx, Blob throttling); doubles each attempt.',
    form: 'a number 0.001-600',
    schema: num(0.001, 600),
    default: '5',
  }),
  DEPLOY_RETRY_ATTEMPTS: s({
    area: 'deploy',
    description:
      'Deploy steps: attempts for a transient failure (1 = no retry). Deterministic failures (migration failed) are never retried.',
    form: 'an integer 1-20',
    schema: int(1, 20),
    default: '4',
  }),
  HEALTH_TIMEOUT_SECONDS: s({
    area: 'deploy',
    description: 'How long to wait for `/web/health` after start.',
    form: 'an integer 1-3600',
    schema: int(1, 3600),
    default: '300',
  }),
  HEALTH_KEY_URLS: s({
    area: 'deploy',
    description: 'Extra paths that must answer 2xx/3xx after a deploy (comma-separated).',
    form: 'comma-separated paths',
    schema: list,
    default: '/web/login',
  }),
  PROD_HEALTH_STABLE_SECONDS: s({
    area: 'deploy',
    description: 'PROD extended health check: how long it must stay healthy.',
    form: 'an integer 0-3600',
    schema: int(0, 3600),
    default: '30',
  }),
  PROD_AUTO_ROLLBACK: s({
    area: 'deploy',
    description: 'Roll PROD back automatically on failure (default: offer a signed rollback link).',
    form: 'true | false',
    schema: bool,
    default: 'false',
  }),
  PROD_DISK_SNAPSHOT: s({
    area: 'deploy',
    description: 'Take an Azure data-disk snapshot before PROD deploys (needs PROD_VM_RESOURCE_ID).',
    form: 'true | false',
    schema: bool,
    default: 'false',
  }),

  // --- approvals --------------------------------------------------------------------------------
  APPROVAL_SIGNING_KEY: s({
    area: 'approvals',
    description: 'HMAC key signing approval and rollback links. Local: generated on first start.',
    form: 'a string of at least 32 characters',
    schema: z.string().min(32),
    secret: true,
    requiredInAzure: true,
  }),
  APPROVAL_SIGNING_KEY_PREVIOUS: s({
    area: 'approvals',
    description: 'Previous signing key, still accepted during a rotation.',
    form: 'a string of at least 32 characters',
    schema: z.string().min(32),
    secret: true,
    disables: 'signing key rotation',
  }),
  APPROVERS: s({
    area: 'approvals',
    description:
      'Who may approve PROD deploys, as identities: per approver an id, a Slack user id (private delivery, Slack decisions) and/or an Entra ID object id or e-mail (the approval page), and a display name. The old names-only form is refused with a migration message.',
    form: `a JSON list [{"id","name","slack","entra"}] or comma-separated id:slack=U…:entra=…:name=… entries, e.g. ${APPROVERS_EXAMPLE}`,
    schema: z.string().transform((v, ctx) => {
      try {
        return parseApprovers(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
    requiredInAzure: true,
    disables: 'PROD deploys (no one may approve)',
  }),
  APPROVALS_REQUIRED: s({
    area: 'approvals',
    description: 'How many distinct approvals a PROD deploy needs.',
    form: 'an integer 1-10',
    schema: int(1, 10),
    default: '1',
  }),
  APPROVAL_TIMEOUT_HOURS: s({
    area: 'approvals',
    description: 'How long an approval request stays open.',
    form: 'a number 0.01-720',
    schema: num(0.01, 720),
    default: '24',
  }),
  APPROVAL_REMINDER_MINUTES: s({
    area: 'approvals',
    description:
      'Reminder sent this long before an approval expires (0: none; fractions allowed, e.g. 0.25 = 15 s).',
    form: 'a number 0-10080',
    schema: num(0, 10080),
    default: '60',
  }),
  FOUR_EYES: s({
    area: 'approvals',
    description: 'The requester may not approve their own request.',
    form: 'true | false',
    schema: bool,
    default: 'true',
  }),

  // --- slack ------------------------------------------------------------------------------------
  SLACK_WEBHOOK_URL: s({
    area: 'slack',
    description: 'Slack incoming webhook for notifications.',
    form: 'an absolute URL',
    schema: url,
    secret: true,
    disables: 'Slack notifications (unless SLACK_BOT_TOKEN is set)',
  }),
  SLACK_BOT_TOKEN: s({
    area: 'slack',
    description:
      'Slack bot token (Web API, scope chat:write): each approver receives their approval link and buttons privately (chat.postMessage to their Slack user id), the channel request message is updated with the progress (chat.update); also posts notifications instead of the webhook.',
    form: 'a Slack token',
    schema: str,
    secret: true,
    disables: 'PROD and Odoo.sh production approvals (links cannot be delivered privately)',
  }),
  SLACK_CHANNEL: s({
    area: 'slack',
    description: 'Channel for SLACK_BOT_TOKEN messages.',
    form: 'a channel id or name',
    schema: str,
    default: '#deployments',
  }),
  SLACK_API_URL: s({
    area: 'slack',
    description: 'Slack Web API base URL.',
    form: 'an absolute URL',
    schema: url,
    default: 'https://slack.com/api',
  }),
  SLACK_SIGNING_SECRET: s({
    area: 'slack',
    description:
      'Slack signing secret: approval messages carry buttons and POST /api/slack/interactions accepts their clicks.',
    form: 'a string',
    schema: str,
    secret: true,
    disables: 'Slack buttons in approval messages and POST /api/slack/interactions (links still work)',
  }),

  // --- refresh ----------------------------------------------------------------------------------
  REFRESH_SOURCE: s({
    area: 'refresh',
    description: 'PROD dump for a refresh: `latest` verified backup or a `fresh` one.',
    form: 'latest | fresh',
    schema: z.enum(['latest', 'fresh']),
    default: 'latest',
  }),
  REFRESH_FILESTORE: s({
    area: 'refresh',
    description:
      'Filestore on refresh: `copy` it, `drop-anonymized` attachments of anonymized records, or `none`.',
    form: 'copy | drop-anonymized | none',
    schema: z.enum(['copy', 'drop-anonymized', 'none']),
    default: 'copy',
  }),
  UAT_PASSWORD_HASH: s({
    area: 'refresh',
    description:
      'Password hash (pbkdf2-sha512, as Odoo stores it) that admin and the REFRESH_KEEP_LOGINS users get after a refresh; every other user has no password.',
    form: 'an Odoo password hash ($pbkdf2-sha512$rounds$salt$hash)',
    // what Odoo 16-18 can verify (passlib pbkdf2_sha512); sql/neutralize.sql refuses anything else too
    schema: z
      .string()
      .regex(
        /^\$pbkdf2-sha512\$\d{1,7}\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+$/,
        'must be $pbkdf2-sha512$<rounds>$<salt>$<hash>',
      ),
    secret: true,
    disables: 'a known UAT password (admin and the kept logins keep their PROD password)',
  }),
  REFRESH_KEEP_LOGINS: s({
    area: 'refresh',
    description:
      'Logins that can still log in to UAT after a refresh, kept as they are (comma-separated); admin always is.',
    form: 'comma-separated logins',
    schema: list,
    default: 'admin',
  }),

  // --- odoo.sh ----------------------------------------------------------------------------------
  ODOOSH_REPOSITORY: s({
    area: 'odoosh',
    description: 'Repository Odoo.sh tracks (often the same as GITHUB_REPOSITORY).',
    form: 'owner/name',
    schema: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/),
    disables: 'the Odoo.sh target',
  }),
  ODOOSH_BRANCHES: s({
    area: 'odoosh',
    description: 'Odoo.sh branches a deploy may move, `name:stage` pairs (stage: dev, staging, production).',
    form: 'comma-separated branch:stage pairs',
    schema: list,
    default: 'staging:staging,production:production',
  }),
  ODOOSH_WAIT_MINUTES: s({
    area: 'odoosh',
    description: "How long to wait for Odoo.sh's commit status after moving a branch.",
    form: 'a number 0.1-1440 (0.5: 30 s)',
    schema: num(0.1, 1440),
    default: '60',
  }),
  ODOOSH_POLL_SECONDS: s({
    area: 'odoosh',
    description:
      "While waiting for Odoo.sh's commit status: seconds between two reads of it through the GitHub API (durable timer).",
    form: 'an integer 1-600',
    schema: int(1, 600),
    default: '30',
  }),

  // --- retention --------------------------------------------------------------------------------
  IMAGE_KEEP_COUNT: s({
    area: 'retention',
    description: 'Image tags kept per environment (running and previous always kept).',
    form: 'an integer 2-100',
    schema: int(2, 100),
    default: '5',
  }),
  BACKUP_RETENTION_DAYS_UAT: s({
    area: 'retention',
    description: 'UAT backup lifetime (also set as a lifecycle rule in Bicep).',
    form: 'an integer 1-3650',
    schema: int(1, 3650),
    default: '14',
  }),
  BACKUP_RETENTION_DAYS_PROD: s({
    area: 'retention',
    description: 'PROD backup lifetime.',
    form: 'an integer 1-3650',
    schema: int(1, 3650),
    default: '90',
  }),

  // --- monitoring -------------------------------------------------------------------------------
  APPLICATIONINSIGHTS_CONNECTION_STRING: s({
    area: 'monitoring',
    description: 'Application Insights; custom events and metrics are sent only when set.',
    form: 'an App Insights connection string',
    schema: str,
    requiredInAzure: true,
    disables: 'telemetry (nothing is sent)',
  }),
} as const satisfies Record<string, SettingSpec<any>>;

export type SettingName = keyof typeof SETTINGS;
type Out<K extends SettingName> = (typeof SETTINGS)[K]['schema'] extends z.ZodType<infer T> ? T : never;
type HasDefault<K extends SettingName> = (typeof SETTINGS)[K] extends { default: string } ? K : never;
export type Config = { readonly [K in SettingName as HasDefault<K>]: Out<K> } & {
  readonly [K in Exclude<SettingName, HasDefault<SettingName>>]?: Out<K>;
};

export class ConfigError extends Error {
  readonly code = 'CONFIG.INVALID';
  readonly retryable = false;
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const KEY_VAULT_REF = /^@Microsoft\.KeyVault\(/i;

/**
 * Validate every setting. Unset → default; set but malformed → error naming key and form (never the
 * value of a secret). In Azure (`PIPELINE_RUNTIME=azure`) settings marked requiredInAzure must be set,
 * and an unresolved Key Vault reference is reported as such.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env,
): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  const runtime = env.PIPELINE_RUNTIME?.trim() || 'local';
  for (const [key, spec] of Object.entries(SETTINGS) as Array<[SettingName, SettingSpec]>) {
    const raw = env[key];
    const unset = raw === undefined || raw.trim() === '';
    // In Azure a required setting must be set explicitly, even when it has a local default.
    const value = unset ? (runtime === 'azure' && spec.requiredInAzure ? undefined : spec.default) : raw;
    if (value === undefined) {
      if (
        runtime === 'azure' &&
        spec.requiredInAzure &&
        !(key === 'BACKUP_STORAGE_ACCOUNT_URL' && env.BACKUP_STORAGE_CONNECTION)
      ) {
        problems.push(`${key} is missing (expected ${spec.form}): ${spec.description}`);
      }
      continue;
    }
    if (KEY_VAULT_REF.test(value)) {
      problems.push(
        `${key} is an unresolved Key Vault reference (check the app's identity and the secret's URI)`,
      );
      continue;
    }
    const parsed = spec.schema.safeParse(value);
    if (!parsed.success) {
      const shown = spec.secret
        ? ''
        : ` (got ${JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value)})`;
      // a setting's own explanation (a custom check) says more than the form alone
      const custom = parsed.error.issues.find((i) => i.code === 'custom')?.message;
      problems.push(`${key} is malformed${shown}: ${custom ? `${custom}; ` : ''}expected ${spec.form}`);
      continue;
    }
    out[key] = parsed.data;
  }
  if (
    out.GITHUB_APP_ID !== undefined &&
    (out.GITHUB_APP_PRIVATE_KEY === undefined || out.GITHUB_APP_INSTALLATION_ID === undefined)
  ) {
    problems.push(
      'GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY or GITHUB_APP_INSTALLATION_ID is missing (expected all three for a GitHub App)',
    );
  }
  // In Azure the intake must be able to read the Odoo repository and post statuses: without a token or
  // a GitHub App every merge webhook would be answered GITHUB.NOT_CONFIGURED. Refuse to start instead.
  if (
    runtime === 'azure' &&
    out.GITHUB_TOKEN === undefined &&
    out.GITHUB_APP_ID === undefined &&
    !problems.some((p) => p.startsWith('GITHUB_TOKEN ') || p.startsWith('GITHUB_APP_'))
  ) {
    problems.push(
      'GITHUB_TOKEN or the GitHub App (GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID, GITHUB_APP_PRIVATE_KEY) is missing: in Azure the pipeline needs GitHub credentials to deploy merges',
    );
  }
  if (out.PROD_DISK_SNAPSHOT === true && out.PROD_VM_RESOURCE_ID === undefined) {
    problems.push(
      'PROD_DISK_SNAPSHOT is true but PROD_VM_RESOURCE_ID is missing (expected the VM resource id to snapshot its data disk)',
    );
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(out) as unknown as Config;
}

/** Optional settings that are unset, with what that disables (printed by the embedded host at start). */
export function unsetOptionalSettings(
  env: Record<string, string | undefined> = process.env,
): Array<{ key: SettingName; disables: string }> {
  return (Object.entries(SETTINGS) as Array<[SettingName, SettingSpec]>)
    .filter(([key, spec]) => spec.disables && (env[key] === undefined || env[key] === ''))
    .map(([key, spec]) => ({ key, disables: spec.disables as string }));
}

/** Names of every secret setting (for log redaction). */
export const SECRET_SETTINGS: SettingName[] = (Object.entries(SETTINGS) as Array<[SettingName, SettingSpec]>)
  .filter(([, spec]) => spec.secret)
  .map(([key]) => key);

/** Register every configured secret with the log redactor, so no log line can carry one. */
export function registerConfigSecrets(config: Config, register: (v: string) => void = defaultRegister): void {
  for (const key of SECRET_SETTINGS) {
    const v = (config as Record<string, unknown>)[key];
    if (typeof v === 'string') register(v);
  }
}
