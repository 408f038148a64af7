metadata description = 'Storage of the function app runtime: AzureWebJobsStorage (Durable queues/tables, leases) and the Flex deployment package container.'

@description('Azure region.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Blob container holding the deployment package of the Flex Consumption app.')
param deploymentContainerName string


@description('Log Analytics workspace receiving the diagnostic settings of this module\'s resources.')
param logAnalyticsWorkspaceId string

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
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
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: account
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

// Durable Functions (Azure Storage backend) uses queues and tables: make sure both services exist.
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-01-01' = {
  parent: account
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' = {
  parent: account
  name: 'default'
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

// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}

// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'Transaction', enabled: true }]
  }
}


@description('Storage account name (AzureWebJobsStorage__accountName).')
output name string = account.name

@description('Storage account resource id.')
output id string = account.id

@description('Blob container URL of the deployment package.')
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'

@description('Queue service marker (Durable queues).')
output queueServiceId string = queueService.id

@description('Table service marker (Durable tables).')
output tableServiceId string = tableService.id
