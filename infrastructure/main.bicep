metadata description = 'odoo-mta pipeline: the whole system (function app, queue, storage, Key Vault, monitoring, network, UAT and PROD VMs) from one template.'

targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Naming and placement
// ---------------------------------------------------------------------------------------------

@description('Name of the environment of the system (azd environment), e.g. `prod` or `staging`; part of every resource name.')
@minLength(1)
@maxLength(32)
param environmentName string

@description('Azure region of every resource.')
param location string

@description('Resource group name; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Extra tags put on every resource.')
param extraTags object = {}

@description('Object id of the user or pipeline principal deploying (azd sets AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer. Empty: none.')
param principalId string = ''

@description('Type of principalId.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

// ---------------------------------------------------------------------------------------------
// Network and VMs
// ---------------------------------------------------------------------------------------------

@description('Address space of the VNet.')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Function app integration subnet (delegated to Microsoft.App/environments).')
param functionSubnetPrefix string = '10.40.1.0/24'

@description('Subnet of the UAT and PROD VMs.')
param vmSubnetPrefix string = '10.40.2.0/24'

@description('Subnet of the private endpoints (Key Vault, both storage accounts, Service Bus Premium).')
param privateEndpointSubnetPrefix string = '10.40.3.0/24'

@description('Static private IP of the UAT VM (UAT_SSH_HOST).')
param uatPrivateIp string = '10.40.2.10'

@description('Static private IP of the PROD VM (PROD_SSH_HOST).')
param prodPrivateIp string = '10.40.2.20'

@description('UAT VM size.')
param uatVmSize string = 'Standard_B2ms'

@description('PROD VM size.')
param prodVmSize string = 'Standard_D4s_v5'

@description('UAT data disk size in GB (PostgreSQL and filestore).')
@minValue(16)
param uatDataDiskSizeGB int = 64

@description('PROD data disk size in GB (PostgreSQL and filestore).')
@minValue(16)
param prodDataDiskSizeGB int = 256

@description('UAT data disk SKU.')
@allowed(['Standard_LRS', 'StandardSSD_LRS', 'StandardSSD_ZRS', 'Premium_LRS', 'Premium_ZRS', 'PremiumV2_LRS'])
param uatDataDiskSku string = 'StandardSSD_LRS'

@description('PROD data disk SKU.')
@allowed(['Standard_LRS', 'StandardSSD_LRS', 'StandardSSD_ZRS', 'Premium_LRS', 'Premium_ZRS', 'PremiumV2_LRS'])
param prodDataDiskSku string = 'Premium_LRS'

@description('Admin user of both VMs (operator access through Bastion or run commands only).')
param vmAdminUsername string = 'azureadmin'

@description('SSH public key of the VM admin user.')
param vmAdminSshPublicKey string

@description('SSH public key of the pipeline; its private half is the sshPrivateKey secret.')
param pipelineSshPublicKey string

@description('User the pipeline logs in as on the VMs (UAT_SSH_USER / PROD_SSH_USER).')
param opsUser string = 'odoo-ops'

@description('SSH port of the VMs.')
param sshPort int = 22

@description('Pinned ed25519 host private key of the UAT VM (infrastructure/scripts/new-host-key.sh makes one; kept in Key Vault).')
@secure()
param uatSshHostPrivateKey string

@description('Host public key of the UAT VM (`ssh-ed25519 AAAA...`).')
param uatSshHostPublicKey string

@description('SHA256 fingerprint of the UAT host key (UAT_SSH_HOST_KEY).')
param uatSshHostKeyFingerprint string

@description('Pinned ed25519 host private key of the PROD VM.')
@secure()
param prodSshHostPrivateKey string

@description('Host public key of the PROD VM.')
param prodSshHostPublicKey string

@description('SHA256 fingerprint of the PROD host key (PROD_SSH_HOST_KEY).')
param prodSshHostKeyFingerprint string

@description('URL of an odoo-ops release to install instead of docker/ops/odoo-ops of this checkout (reachable from the VM subnet); needs opsScriptSha256.')
param opsScriptUrl string = ''

@description('sha256 (hex) of the script at opsScriptUrl; the VM refuses a download that does not match.')
param opsScriptSha256 string = ''

// ---------------------------------------------------------------------------------------------
// Backups, secrets, queue, monitoring
// ---------------------------------------------------------------------------------------------

@description('Replication of the backup storage account.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS', 'Standard_RAGRS', 'Standard_RAGZRS'])
param backupStorageSku string = 'Standard_GZRS'

@description('UAT backup lifetime in days (lifecycle rule and BACKUP_RETENTION_DAYS_UAT).')
@minValue(1)
@maxValue(3650)
param backupRetentionDaysUat int = 14

@description('PROD backup lifetime in days (lifecycle rule and BACKUP_RETENTION_DAYS_PROD).')
@minValue(1)
@maxValue(3650)
param backupRetentionDaysProd int = 90

@description('Days after which PROD backups move to the cool tier (0: never).')
@minValue(0)
param prodBackupCoolAfterDays int = 30

@description('Soft delete of blobs and containers, in days.')
@minValue(1)
@maxValue(365)
param backupSoftDeleteDays int = 14

@description('WORM for the backups: version-level immutability on the backup container with a time-based retention policy of backupImmutabilityDays (PROD backups cannot be changed or deleted before it ends).')
param enableBackupImmutability bool = true

@description('Days of the backups\' time-based immutability policy; default: the PROD retention. Holds UAT backups that long as well (same container).')
@minValue(1)
@maxValue(3650)
param backupImmutabilityDays int = backupRetentionDaysProd

@description('Key Vault purge protection (cannot be turned off again).')
param keyVaultPurgeProtection bool = true

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Service Bus tier. Premium (default): public network access disabled, reached through a private endpoint; billed per messaging unit (1 here) around the clock. Standard: far cheaper, but Standard has no private endpoints: its public endpoint stays, behind an IP firewall admitting only the NAT gateway address, and the platform cannot watch the queue from outside, so the queue trigger keeps an always-ready instance (queueAlwaysReady). See docs/INFRASTRUCTURE.md.')
@allowed(['Premium', 'Standard'])
param serviceBusSku string = 'Premium'

@description('Deliveries of a deploy message before it is dead-lettered.')
@minValue(1)
@maxValue(100)
param deployQueueMaxDeliveryCount int = 10

// ---------------------------------------------------------------------------------------------
// Function app
// ---------------------------------------------------------------------------------------------

@description('Node.js version of the function app.')
@allowed(['20', '22'])
param nodeVersion string = '22'

@description('Maximum instances of the function app.')
@minValue(40)
@maxValue(1000)
param functionMaximumInstanceCount int = 40

@description('Instance memory of the function app in MB.')
@allowed([512, 2048, 4096])
param functionInstanceMemoryMB int = 2048

@description('Always-ready instances of the `durable` group.')
@minValue(0)
@maxValue(10)
param durableAlwaysReady int = 1

@description('Always-ready instances of the `http` group: GitHub answers a webhook as failed after 10 s and Slack a button after 3 s, a cold start of the app can exceed that. 0 saves the always-ready baseline of one instance (see docs/INFRASTRUCTURE.md).')
@minValue(0)
@maxValue(10)
param httpAlwaysReady int = 1

@description('Always-ready instances of the deploy queue trigger; default 1 on Service Bus Standard (the platform cannot watch a firewalled queue), 0 on Premium (scale from zero through the private endpoint).')
@minValue(0)
@maxValue(10)
param queueAlwaysReady int = serviceBusSku == 'Standard' ? 1 : 0

@description('Public base URL of the app (custom domain); empty: the default host name.')
param publicBaseUrl string = ''

@description('Application (client) id of the Entra ID app registration that signs approvers in on the web pages (App Service Authentication). Empty: built-in authentication stays off, the app trusts no X-MS-CLIENT-PRINCIPAL header and approvers decide in Slack only (see docs/SECURITY.md).')
param entraAuthClientId string = ''

@description('true: that registration signs in with a client secret, read from the app setting MICROSOFT_PROVIDER_AUTHENTICATION_SECRET (set it as a Key Vault reference through extraAppSettings); false: ID tokens only (enable "ID tokens" on the registration).')
param entraAuthConfidentialClient bool = false

// ---------------------------------------------------------------------------------------------
// Pipeline settings (names and meaning: shared/config.ts)
// ---------------------------------------------------------------------------------------------

@description('GITHUB_REPOSITORY: the Odoo repository whose merges are deployed (owner/name).')
param githubRepository string

@description('GITHUB_DEFAULT_BRANCH.')
param githubDefaultBranch string = 'main'

@description('DISPLAY_TIME_ZONE: IANA time zone of the times on the status page and in the CLI.')
param displayTimeZone string = 'UTC'

@description('GITHUB_TRIGGER_EVENT: push or workflow_run.')
@allowed(['push', 'workflow_run'])
param githubTriggerEvent string = 'workflow_run'

@description('GITHUB_IMAGE_WORKFLOW: name of the image build workflow of the Odoo repository.')
param githubImageWorkflow string = 'build-image'

@description('GITHUB_IMAGE_WORKFLOW_PATH: file of the image build workflow (workflow_run.path); the name alone is not trusted.')
param githubImageWorkflowPath string = '.github/workflows/build-image.yml'

@description('COVERAGE_SOURCE_LOGIN: account that posts the coverage commit status (the Odoo repository CI).')
param coverageSourceLogin string = 'github-actions[bot]'

@description('COVERAGE_SOURCE_APP_ID: GitHub App whose coverage check run counts (empty: check runs are not trusted).')
param coverageSourceAppId string = ''

@description('GITHUB_APP_ID (empty: use githubToken).')
param githubAppId string = ''

@description('GITHUB_APP_INSTALLATION_ID.')
param githubAppInstallationId string = ''

@description('COVERAGE_MIN: minimum coverage percentage.')
param coverageMin string = '80'

@description('REGISTRY_KIND: oci, acr or dockerhub.')
@allowed(['oci', 'acr', 'dockerhub'])
param registryKind string = 'oci'

@description('REGISTRY_URL: registry base URL.')
param registryUrl string

@description('REGISTRY_REPOSITORY: image repository of the Odoo image.')
param registryRepository string = 'odoo-mta'

@description('REGISTRY_USERNAME (empty: anonymous).')
param registryUsername string = ''

@description('UAT_URL; empty: http://<UAT private IP>.')
param uatUrl string = ''

@description('PROD_URL; empty: http://<PROD private IP>.')
param prodUrl string = ''

@description('APPROVERS: approver identities, e.g. alice:slack=U0123ABCD:entra=<Entra object id or e-mail>:name=Alice, bob:slack=U0456EFGH (or a JSON list); see docs/APPROVAL_LINKS.md.')
param approvers string

@description('APPROVALS_REQUIRED.')
@minValue(1)
@maxValue(10)
param approvalsRequired int = 1

@description('SLACK_CHANNEL for bot-token messages.')
param slackChannel string = '#deployments'

@description('ODOOSH_REPOSITORY (empty: no Odoo.sh target).')
param odooshRepository string = ''

@description('PROD_DISK_SNAPSHOT: snapshot the PROD data disk before PROD deploys.')
param prodDiskSnapshot bool = true

@description('Further settings of shared/config.ts (plain values only), e.g. {"APPROVAL_TIMEOUT_HOURS": "8"}.')
param extraAppSettings object = {}

// Secrets: stored in Key Vault, the app reads Key Vault references.

@description('GITHUB_WEBHOOK_SECRET (at least 16 characters).')
@secure()
@minLength(16)
param githubWebhookSecret string

@description('GITHUB_WEBHOOK_SECRET_PREVIOUS during a rotation (empty: none).')
@secure()
param githubWebhookSecretPrevious string = ''

@description('APPROVAL_SIGNING_KEY (at least 32 characters).')
@secure()
@minLength(32)
param approvalSigningKey string

@description('APPROVAL_SIGNING_KEY_PREVIOUS during a rotation (empty: none).')
@secure()
param approvalSigningKeyPrevious string = ''

@description('STATUS_READ_KEY: read-only key of the status page /api/dashboard (at least 32 characters; empty: the page is closed).')
@secure()
param statusReadKey string = ''

@description('SSH_PRIVATE_KEY of the pipeline (OpenSSH/PEM).')
@secure()
param sshPrivateKey string

@description('GITHUB_TOKEN (empty: GitHub App).')
@secure()
param githubToken string = ''

@description('GITHUB_APP_PRIVATE_KEY (empty: token).')
@secure()
param githubAppPrivateKey string = ''

@description('REGISTRY_PASSWORD (empty: anonymous).')
@secure()
param registryPassword string = ''

@description('SLACK_WEBHOOK_URL (empty: none).')
@secure()
param slackWebhookUrl string = ''

@description('SLACK_BOT_TOKEN (chat:write): needed for PROD approvals, each approver receives their link privately (empty: none).')
@secure()
param slackBotToken string = ''

@description('SLACK_SIGNING_SECRET (empty: no interactive buttons).')
@secure()
param slackSigningSecret string = ''

@description('UAT_PASSWORD_HASH: admin and REFRESH_KEEP_LOGINS users get it after a refresh, nobody else has a password (empty: they keep their PROD password).')
@secure()
param uatPasswordHash string = ''

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = union(extraTags, { 'azd-env-name': environmentName, system: 'odoo-mta-pipeline' })
var names = {
  logAnalytics: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
  applicationInsights: '${abbrs.insightsComponents}${resourceToken}'
  identity: '${abbrs.managedIdentityUserAssignedIdentities}func-${resourceToken}'
  keyVault: '${abbrs.keyVaultVaults}${resourceToken}'
  backupStorage: '${abbrs.storageStorageAccounts}bk${resourceToken}'
  runtimeStorage: '${abbrs.storageStorageAccounts}fn${resourceToken}'
  serviceBus: '${abbrs.serviceBusNamespaces}${resourceToken}'
  uatVm: '${abbrs.computeVirtualMachines}uat-${resourceToken}'
  prodVm: '${abbrs.computeVirtualMachines}prod-${resourceToken}'
}
var backupContainerName = 'backups'
var ledgerContainerName = 'ledger'
var deployQueueName = 'deploy-requests'
var taskHubName = 'odoomta${take(resourceToken, 8)}'
var dataDir = '/srv/odoo'
// docker/ops/odoo-ops is embedded in the install run command when the template is built, unless a
// release URL is given (see docs/INFRASTRUCTURE.md); never in the VMs' custom data.
var opsScriptBase64 = empty(opsScriptUrl) ? loadFileAsBase64('../docker/ops/odoo-ops') : ''

// Key Vault secret name per setting; `present` decides whether the secret and its reference exist.
var secretSettings = [
  { setting: 'GITHUB_WEBHOOK_SECRET', secret: 'github-webhook-secret', present: true }
  { setting: 'GITHUB_WEBHOOK_SECRET_PREVIOUS', secret: 'github-webhook-secret-previous', present: !empty(githubWebhookSecretPrevious) }
  { setting: 'APPROVAL_SIGNING_KEY', secret: 'approval-signing-key', present: true }
  { setting: 'APPROVAL_SIGNING_KEY_PREVIOUS', secret: 'approval-signing-key-previous', present: !empty(approvalSigningKeyPrevious) }
  { setting: 'STATUS_READ_KEY', secret: 'status-read-key', present: !empty(statusReadKey) }
  { setting: 'SSH_PRIVATE_KEY', secret: 'ssh-private-key', present: true }
  { setting: 'GITHUB_TOKEN', secret: 'github-token', present: !empty(githubToken) }
  { setting: 'GITHUB_APP_PRIVATE_KEY', secret: 'github-app-private-key', present: !empty(githubAppPrivateKey) }
  { setting: 'REGISTRY_PASSWORD', secret: 'registry-password', present: !empty(registryPassword) }
  { setting: 'SLACK_WEBHOOK_URL', secret: 'slack-webhook-url', present: !empty(slackWebhookUrl) }
  { setting: 'SLACK_BOT_TOKEN', secret: 'slack-bot-token', present: !empty(slackBotToken) }
  { setting: 'SLACK_SIGNING_SECRET', secret: 'slack-signing-secret', present: !empty(slackSigningSecret) }
  { setting: 'UAT_PASSWORD_HASH', secret: 'uat-password-hash', present: !empty(uatPasswordHash) }
]

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: empty(resourceGroupName) ? '${abbrs.resourcesResourceGroups}${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    retentionInDays: logRetentionDays
    disableLocalAuth: true
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    displayName: 'odoo-mta pipeline (${environmentName})'
    applicationInsightsName: names.applicationInsights
  }
  dependsOn: [monitoring]
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: names.identity
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
    location: location
    tags: tags
    name: names.keyVault
    enablePurgeProtection: keyVaultPurgeProtection
    softDeleteRetentionInDays: 90
    secrets: {
      'github-webhook-secret': githubWebhookSecret
      'github-webhook-secret-previous': githubWebhookSecretPrevious
      'approval-signing-key': approvalSigningKey
      'approval-signing-key-previous': approvalSigningKeyPrevious
      'status-read-key': statusReadKey
      'ssh-private-key': sshPrivateKey
      'github-token': githubToken
      'github-app-private-key': githubAppPrivateKey
      'registry-password': registryPassword
      'slack-webhook-url': slackWebhookUrl
      'slack-bot-token': slackBotToken
      'slack-signing-secret': slackSigningSecret
      'uat-password-hash': uatPasswordHash
      // Kept for disaster recovery: a rebuilt VM gets the same host key, so the pins stay valid.
      'uat-ssh-host-key': uatSshHostPrivateKey
      'prod-ssh-host-key': prodSshHostPrivateKey
    }
  }
}

module backupStorage 'modules/storage-backups.bicep' = {
  name: 'backup-storage'
  scope: rg
  params: {
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
    location: location
    tags: tags
    name: names.backupStorage
    skuName: backupStorageSku
    backupContainerName: backupContainerName
    ledgerContainerName: ledgerContainerName
    uatRetentionDays: backupRetentionDaysUat
    prodRetentionDays: backupRetentionDaysProd
    prodCoolAfterDays: prodBackupCoolAfterDays
    softDeleteDays: backupSoftDeleteDays
    enableImmutability: enableBackupImmutability
    immutabilityDays: backupImmutabilityDays
  }
}

module runtimeStorage 'modules/storage-runtime.bicep' = {
  name: 'runtime-storage'
  scope: rg
  params: {
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
    location: location
    tags: tags
    name: names.runtimeStorage
    deploymentContainerName: 'app-package-${take(resourceToken, 7)}'
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
    location: location
    tags: tags
    name: names.serviceBus
    queueName: deployQueueName
    maxDeliveryCount: deployQueueMaxDeliveryCount
    duplicateDetectionWindow: 'P1D'
    sku: serviceBusSku
    allowedIpAddresses: [network.outputs.outboundIp]
  }
}

module network 'modules/network.bicep' = {
  name: 'network'
  scope: rg
  params: {
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
    location: location
    tags: tags
    vnetName: '${abbrs.networkVirtualNetworks}${resourceToken}'
    vmNsgName: '${abbrs.networkNetworkSecurityGroups}vm-${resourceToken}'
    functionNsgName: '${abbrs.networkNetworkSecurityGroups}func-${resourceToken}'
    natGatewayName: '${abbrs.networkNatGateways}${resourceToken}'
    natPublicIpName: '${abbrs.networkPublicIPAddresses}ng-${resourceToken}'
    addressPrefix: vnetAddressPrefix
    functionSubnetPrefix: functionSubnetPrefix
    vmSubnetPrefix: vmSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    sshPort: sshPort
  }
}

// Key Vault, both storage accounts and Service Bus (Premium) are closed to the internet; the function
// app and the VMs reach them through these private endpoints, named by the VNet's privatelink zones.
module privateEndpoints 'modules/private-endpoints.bicep' = {
  name: 'private-endpoints'
  scope: rg
  params: {
    location: location
    tags: tags
    nameSuffix: resourceToken
    vnetId: network.outputs.vnetId
    subnetId: network.outputs.privateEndpointSubnetId
    keyVaultId: keyVault.outputs.id
    runtimeStorageId: runtimeStorage.outputs.id
    backupStorageId: backupStorage.outputs.id
    serviceBusId: serviceBus.outputs.namespaceId
    serviceBusPrivateEndpoint: serviceBusSku == 'Premium'
  }
}

module uatVm 'modules/vm.bicep' = {
  name: 'vm-uat'
  scope: rg
  params: {
    location: location
    tags: tags
    environment: 'uat'
    name: names.uatVm
    nicName: '${abbrs.networkNetworkInterfaces}uat-${resourceToken}'
    subnetId: network.outputs.vmSubnetId
    privateIp: uatPrivateIp
    size: uatVmSize
    zone: ''
    osDiskSizeGB: 64
    dataDiskSizeGB: uatDataDiskSizeGB
    dataDiskSku: uatDataDiskSku
    dataDir: dataDir
    adminUsername: vmAdminUsername
    adminSshPublicKey: vmAdminSshPublicKey
    opsUser: opsUser
    pipelineSshPublicKey: pipelineSshPublicKey
    sshPort: sshPort
    hostPrivateKey: uatSshHostPrivateKey
    hostPublicKey: uatSshHostPublicKey
    registryUrl: registryUrl
    registryRepository: registryRepository
    opsScriptBase64: opsScriptBase64
    opsScriptUrl: opsScriptUrl
    opsScriptSha256: opsScriptSha256
  }
}

module prodVm 'modules/vm.bicep' = {
  name: 'vm-prod'
  scope: rg
  params: {
    location: location
    tags: tags
    environment: 'prod'
    name: names.prodVm
    nicName: '${abbrs.networkNetworkInterfaces}prod-${resourceToken}'
    subnetId: network.outputs.vmSubnetId
    privateIp: prodPrivateIp
    size: prodVmSize
    zone: ''
    osDiskSizeGB: 64
    dataDiskSizeGB: prodDataDiskSizeGB
    dataDiskSku: prodDataDiskSku
    dataDir: dataDir
    adminUsername: vmAdminUsername
    adminSshPublicKey: vmAdminSshPublicKey
    opsUser: opsUser
    pipelineSshPublicKey: pipelineSshPublicKey
    sshPort: sshPort
    hostPrivateKey: prodSshHostPrivateKey
    hostPublicKey: prodSshHostPublicKey
    registryUrl: registryUrl
    registryRepository: registryRepository
    opsScriptBase64: opsScriptBase64
    opsScriptUrl: opsScriptUrl
    opsScriptSha256: opsScriptSha256
  }
}

// Every setting shared/config.ts needs in Azure; secrets only as Key Vault references.
var plainSettings = {
  TASK_HUB_NAME: taskHubName
  LOG_LEVEL: 'info'
  DISPLAY_TIME_ZONE: displayTimeZone
  BACKUP_STORAGE_ACCOUNT_URL: backupStorage.outputs.blobUrl
  BACKUP_CONTAINER: backupStorage.outputs.backupContainerName
  LEDGER_CONTAINER: backupStorage.outputs.ledgerContainerName
  ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  DEPLOY_QUEUE_NAME: serviceBus.outputs.queueName
  GITHUB_REPOSITORY: githubRepository
  GITHUB_DEFAULT_BRANCH: githubDefaultBranch
  GITHUB_TRIGGER_EVENT: githubTriggerEvent
  GITHUB_IMAGE_WORKFLOW: githubImageWorkflow
  GITHUB_IMAGE_WORKFLOW_PATH: githubImageWorkflowPath
  COVERAGE_SOURCE_LOGIN: coverageSourceLogin
  COVERAGE_MIN: coverageMin
  REGISTRY_KIND: registryKind
  REGISTRY_URL: registryUrl
  REGISTRY_REPOSITORY: registryRepository
  UAT_SSH_HOST: uatVm.outputs.privateIp
  UAT_SSH_PORT: string(sshPort)
  UAT_SSH_USER: opsUser
  UAT_SSH_HOST_KEY: uatSshHostKeyFingerprint
  UAT_URL: empty(uatUrl) ? 'http://${uatPrivateIp}' : uatUrl
  UAT_VM_RESOURCE_ID: uatVm.outputs.id
  PROD_SSH_HOST: prodVm.outputs.privateIp
  PROD_SSH_PORT: string(sshPort)
  PROD_SSH_USER: opsUser
  PROD_SSH_HOST_KEY: prodSshHostKeyFingerprint
  PROD_URL: empty(prodUrl) ? 'http://${prodPrivateIp}' : prodUrl
  PROD_VM_RESOURCE_ID: prodVm.outputs.id
  PROD_DISK_SNAPSHOT: string(prodDiskSnapshot)
  ARM_ENDPOINT: environment().resourceManager
  APPROVERS: approvers
  APPROVALS_REQUIRED: string(approvalsRequired)
  SLACK_CHANNEL: slackChannel
  BACKUP_RETENTION_DAYS_UAT: string(backupRetentionDaysUat)
  BACKUP_RETENTION_DAYS_PROD: string(backupRetentionDaysProd)
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
}

var optionalSettings = union(
  empty(registryUsername) ? {} : { REGISTRY_USERNAME: registryUsername },
  empty(githubAppId) ? {} : { GITHUB_APP_ID: githubAppId, GITHUB_APP_INSTALLATION_ID: githubAppInstallationId },
  empty(odooshRepository) ? {} : { ODOOSH_REPOSITORY: odooshRepository },
  empty(coverageSourceAppId) ? {} : { COVERAGE_SOURCE_APP_ID: coverageSourceAppId }
)

var keyVaultReferences = toObject(
  filter(secretSettings, s => s.present),
  s => s.setting,
  s => '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${s.secret})'
)

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
    location: location
    tags: tags
    planName: '${abbrs.webServerFarms}${resourceToken}'
    name: '${abbrs.webSitesFunctions}${resourceToken}'
    azdServiceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    runtimeStorageName: runtimeStorage.outputs.name
    deploymentContainerUrl: runtimeStorage.outputs.deploymentContainerUrl
    subnetId: network.outputs.functionSubnetId
    nodeVersion: nodeVersion
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    durableAlwaysReady: durableAlwaysReady
    httpAlwaysReady: httpAlwaysReady
    queueFunctionName: 'deployQueueTrigger'
    queueAlwaysReady: queueAlwaysReady
    publicBaseUrl: publicBaseUrl
    entraAuthClientId: entraAuthClientId
    entraAuthConfidentialClient: entraAuthConfidentialClient
    pipelineSettings: union(extraAppSettings, plainSettings, optionalSettings, keyVaultReferences)
  }
  // The app starts resolving Key Vault references and reading its package as soon as it exists: the
  // private endpoints and their DNS records must be there first.
  dependsOn: [privateEndpoints]
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    functionIdentityName: names.identity
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    runtimeStorageName: names.runtimeStorage
    backupStorageName: names.backupStorage
    serviceBusName: names.serviceBus
    queueName: deployQueueName
    keyVaultName: names.keyVault
    applicationInsightsName: names.applicationInsights
    uatVmName: names.uatVm
    prodVmName: names.prodVm
  }
  dependsOn: [identity, runtimeStorage, backupStorage, serviceBus, keyVault, monitoring, uatVm, prodVm]
}

// ---------------------------------------------------------------------------------------------
// Outputs the pipeline (azd, workflows, docs) needs
// ---------------------------------------------------------------------------------------------

@description('Region.')
output AZURE_LOCATION string = location

@description('Tenant id.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Resource group name.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Function app name (deploy target of the package).')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Public base URL of the function app.')
output PUBLIC_BASE_URL string = empty(publicBaseUrl) ? 'https://${functionApp.outputs.defaultHostName}' : publicBaseUrl

@description('GitHub webhook URL to set in the Odoo repository.')
output GITHUB_WEBHOOK_URL string = '${empty(publicBaseUrl) ? 'https://${functionApp.outputs.defaultHostName}' : publicBaseUrl}/api/github/webhook'

@description('Key Vault name (secret rotation).')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('Backup storage blob endpoint.')
output BACKUP_STORAGE_ACCOUNT_URL string = backupStorage.outputs.blobUrl

@description('Service Bus namespace host.')
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace

@description('UAT VM resource id.')
output UAT_VM_RESOURCE_ID string = uatVm.outputs.id

@description('PROD VM resource id.')
output PROD_VM_RESOURCE_ID string = prodVm.outputs.id

@description('Outbound IP of the VMs and the function app (allow-list it at the registry if needed).')
output OUTBOUND_IP string = network.outputs.outboundIp

@description('Application Insights name.')
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName

@description('Workbook resource id.')
output WORKBOOK_ID string = workbook.outputs.id
