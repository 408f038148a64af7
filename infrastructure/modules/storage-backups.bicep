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

@description('Version-level immutability (WORM) for the backup container: PROD backups cannot be changed or deleted before their retention ends. Cannot be undone once locked.')
param enableImmutability bool

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
    publicNetworkAccess: 'Enabled'
    networkAcls: { bypass: 'AzureServices', defaultAction: 'Allow' }
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
