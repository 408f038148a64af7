// The production system: the function app, UAT and PROD VMs as run for real.
//   az deployment sub create -l westeurope -f infrastructure/main.bicep -p infrastructure/environments/production.bicepparam
using '../main.bicep'

param environmentName = 'prod'
param location = 'westeurope'
param principalType = 'ServicePrincipal'
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')

param githubRepository = readEnvironmentVariable('ODOO_REPOSITORY', 'example-org/odoo-mta')
param registryKind = 'dockerhub'
param registryUrl = 'https://index.docker.io'
param registryRepository = readEnvironmentVariable('REGISTRY_REPOSITORY', 'example-org/odoo-mta')
param registryUsername = readEnvironmentVariable('REGISTRY_USERNAME', '')
param approvers = readEnvironmentVariable('APPROVERS', 'release-manager,cto')
param approvalsRequired = 1

param uatVmSize = 'Standard_B2ms'
param prodVmSize = 'Standard_D4s_v5'
param uatDataDiskSizeGB = 64
param prodDataDiskSizeGB = 256
param prodDataDiskSku = 'Premium_LRS'

param backupStorageSku = 'Standard_GZRS'
param backupRetentionDaysUat = 14
param backupRetentionDaysProd = 90
param prodBackupCoolAfterDays = 30
param backupSoftDeleteDays = 14
param enableBackupImmutability = true
param keyVaultPurgeProtection = true
param logRetentionDays = 90
param durableAlwaysReady = 1
param serviceBusSku = 'Premium'
param httpAlwaysReady = 1
param prodDiskSnapshot = true

// Secrets and keys come from the environment of the deploying shell or workflow (GitHub secrets,
// azd environment); a required one that is unset stops the build naming the variable.
param vmAdminSshPublicKey = readEnvironmentVariable('VM_ADMIN_SSH_PUBLIC_KEY')
param pipelineSshPublicKey = readEnvironmentVariable('PIPELINE_SSH_PUBLIC_KEY')
param uatSshHostPublicKey = readEnvironmentVariable('UAT_SSH_HOST_PUBLIC_KEY')
param uatSshHostKeyFingerprint = readEnvironmentVariable('UAT_SSH_HOST_KEY')
param prodSshHostPublicKey = readEnvironmentVariable('PROD_SSH_HOST_PUBLIC_KEY')
param prodSshHostKeyFingerprint = readEnvironmentVariable('PROD_SSH_HOST_KEY')
param githubWebhookSecret = readEnvironmentVariable('WEBHOOK_SECRET')
param approvalSigningKey = readEnvironmentVariable('APPROVAL_SIGNING_KEY')
// During a rotation (docs/APPROVAL_LINKS.md): the previous key and webhook secret; Key Vault has no
// public endpoint, so they reach it through the template like every secret.
param approvalSigningKeyPrevious = readEnvironmentVariable('APPROVAL_SIGNING_KEY_PREVIOUS', '')
param githubWebhookSecretPrevious = readEnvironmentVariable('WEBHOOK_SECRET_PREVIOUS', '')
param sshPrivateKey = readEnvironmentVariable('SSH_PRIVATE_KEY')
param uatSshHostPrivateKey = readEnvironmentVariable('UAT_SSH_HOST_PRIVATE_KEY')
param prodSshHostPrivateKey = readEnvironmentVariable('PROD_SSH_HOST_PRIVATE_KEY')
param githubToken = readEnvironmentVariable('ODOO_GITHUB_TOKEN', '')
// GitHub credentials: the token above, or a GitHub App (all three). One of them is required: the
// preprovision check (infrastructure/scripts/preflight.sh) and the app's config refuse neither.
param githubAppId = readEnvironmentVariable('ODOO_GITHUB_APP_ID', '')
param githubAppInstallationId = readEnvironmentVariable('ODOO_GITHUB_APP_INSTALLATION_ID', '')
param githubAppPrivateKey = readEnvironmentVariable('ODOO_GITHUB_APP_PRIVATE_KEY', '')
param registryPassword = readEnvironmentVariable('REGISTRY_PASSWORD', '')
param slackWebhookUrl = readEnvironmentVariable('SLACK_WEBHOOK_URL', '')
param slackBotToken = readEnvironmentVariable('SLACK_BOT_TOKEN', '')
param slackSigningSecret = readEnvironmentVariable('SLACK_SIGNING_SECRET', '')
