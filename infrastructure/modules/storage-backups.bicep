metadata description = 'Backup and ledger storage: containers, lifecycle rules per environment, soft delete, versioning, optional immutability.'

@description('Azure region.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Replication: ZRS/GZRS keep backups through a zone or region outage.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS', 'Standard_RAGRS', 'Standard_RAGZRS'])
param skuName string

@description('Container for backups (`<env>/<timestamp>-<version>/...`); the BACKUP_CONTAINER setting.')
param backupContainerName string

@description('Container for the environment ledger, intake decisions and deploy logs; the LEDGER_CONTAINER setting.')
param ledgerContainerName string

@description('Days a UAT backup is kept before the lifecycle rule deletes it (BACKUP_RETENTION_DAYS_UAT).')
@minValue(1)
@maxValue(3650)
param uatRetentionDays int

@description('Days a PROD backup is kept before the lifecycle rule deletes it (BACKUP_RETENTION_DAYS_PROD).')
@minValue(1)
@maxValue(3650)
param prodRetentionDays int

@description('Days after which PROD backups move to the cool tier (0: never).')
@minValue(0)
param prodCoolAfterDays int

@description('Days deleted blobs and containers can be recovered.')
@minValue(1)
@maxValue(365)
param softDeleteDays int

@description('Version-level immutability (WORM) for the backup container, with a time-based policy: no backup can be changed or deleted before immutabilityDays have passed since it was written.')
param enableImmutability bool

@description('Days of the time-based immutability policy of the backup container (the PROD retention). It applies to every blob of the container, so UAT backups are held that long too.')
@minValue(1)
@maxValue(146000)
param immutabilityDays int


@description('Log Analytics workspace receiving the diagnostic settings of this module\'s resources.')
param logAnalyticsWorkspaceId string

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Closed to the internet: reached through its private endpoints only (private-endpoints.bicep).
    // Containers, lifecycle and immutability policies are set through ARM (control plane).
    publicNetworkAccess: 'Disabled'
    networkAcls: { bypass: 'None', defaultAction: 'Deny', ipRules: [], virtualNetworkRules: [] }
    immutableStorageWithVersioning: enableImmutability ? { enabled: true } : null
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
    changeFeed: { enabled: true, retentionInDays: softDeleteDays }
    deleteRetentionPolicy: { enabled: true, days: softDeleteDays }
    containerDeleteRetentionPolicy: { enabled: true, days: softDeleteDays }
  }
}

resource backupContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: backupContainerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: enableImmutability ? { enabled: true } : null
  }
}

// The policy is what protects the backups: version-level immutability support alone protects nothing
// (https://learn.microsoft.com/azure/storage/blobs/immutable-time-based-retention-policy-overview).
// It is created unlocked (it can be shortened or removed while testing); lock it once the retention is
// right: `az storage container immutability-policy lock` (docs/INFRASTRUCTURE.md).
resource backupImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2025-01-01' = if (enableImmutability) {
  parent: backupContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: immutabilityDays
    allowProtectedAppendWrites: false
  }
}

resource ledgerContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: ledgerContainerName
  properties: { publicAccess: 'None' }
}

// Lifecycle: backups live under `<env>/...` in the backup container, so one rule per environment.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2025-01-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'uat-backups'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['${backupContainer.name}/uat/'] }
            actions: {
              baseBlob: { delete: { daysAfterModificationGreaterThan: uatRetentionDays } }
              version: { delete: { daysAfterCreationGreaterThan: uatRetentionDays } }
            }
          }
        }
        {
          name: 'prod-backups'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['${backupContainer.name}/prod/'] }
            actions: {
              baseBlob: union(
                { delete: { daysAfterModificationGreaterThan: prodRetentionDays } },
                prodCoolAfterDays > 0 && prodCoolAfterDays < prodRetentionDays
                  ? { tierToCool: { daysAfterModificationGreaterThan: prodCoolAfterDays } }
                  : {}
              )
              version: { delete: { daysAfterCreationGreaterThan: prodRetentionDays } }
            }
          }
        }
        {
          name: 'old-ledger-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['${ledgerContainer.name}/'] }
            actions: { version: { delete: { daysAfterCreationGreaterThan: 30 } } }
          }
        }
      ]
    }
  }
}

// Diagnostic settings: every resource here that has them sends its logs and metrics to Log Analytics.
// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}

// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}


@description('Storage account name.')
output name string = account.name

@description('Storage account resource id.')
output id string = account.id

@description('Blob endpoint without trailing slash (BACKUP_STORAGE_ACCOUNT_URL).')
output blobUrl string = 'https://${account.name}.blob.${environment().suffixes.storage}'

@description('Backup container name.')
output backupContainerName string = backupContainer.name

@description('Ledger container name.')
output ledgerContainerName string = ledgerContainer.name
