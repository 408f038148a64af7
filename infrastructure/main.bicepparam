// azd reads this file (`azd provision` / `azd up`): every value comes from the azd environment
// (`azd env set NAME value`), secrets included, so nothing secret is committed.
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME', 'prod')
param location = readEnvironmentVariable('AZURE_LOCATION', 'westeurope')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param principalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', 'User')

param githubRepository = readEnvironmentVariable('ODOO_REPOSITORY', 'example-org/odoo-mta')
param registryUrl = readEnvironmentVariable('REGISTRY_URL', 'https://index.docker.io')
param registryKind = readEnvironmentVariable('REGISTRY_KIND', 'dockerhub')
param registryRepository = readEnvironmentVariable('REGISTRY_REPOSITORY', 'odoo-mta')
param registryUsername = readEnvironmentVariable('REGISTRY_USERNAME', '')
param approvers = readEnvironmentVariable('APPROVERS', 'release-manager')
param uatUrl = readEnvironmentVariable('UAT_URL', '')
param prodUrl = readEnvironmentVariable('PROD_URL', '')

param vmAdminSshPublicKey = readEnvironmentVariable('VM_ADMIN_SSH_PUBLIC_KEY')
param pipelineSshPublicKey = readEnvironmentVariable('PIPELINE_SSH_PUBLIC_KEY')
param uatSshHostPublicKey = readEnvironmentVariable('UAT_SSH_HOST_PUBLIC_KEY')
param uatSshHostKeyFingerprint = readEnvironmentVariable('UAT_SSH_HOST_KEY')
param prodSshHostPublicKey = readEnvironmentVariable('PROD_SSH_HOST_PUBLIC_KEY')
param prodSshHostKeyFingerprint = readEnvironmentVariable('PROD_SSH_HOST_KEY')

// Secrets (infrastructure/scripts/new-secrets.sh puts them in the azd environment). A required value
// that is unset stops the build naming the variable, before anything is deployed.
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

// Service Bus tier: Premium (private endpoint, default) or Standard (cheaper, IP firewall); see
// docs/INFRASTRUCTURE.md, "Network: closed to the internet".
param serviceBusSku = readEnvironmentVariable('SERVICE_BUS_SKU', 'Premium')
param entraAuthClientId = readEnvironmentVariable('ENTRA_AUTH_CLIENT_ID', '')
param entraAuthConfidentialClient = bool(readEnvironmentVariable('ENTRA_AUTH_CONFIDENTIAL_CLIENT', 'false'))
