metadata description = 'Service Bus namespace (Standard: sessions and duplicate detection) with the deploy queue.'

@description('Azure region.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Namespace name.')
param name string

@description('Queue carrying deploy requests (DEPLOY_QUEUE_NAME).')
param queueName string

@description('Deliveries before a message is dead-lettered.')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int

@description('Window in which a repeated message id is dropped (ISO 8601 duration).')
param duplicateDetectionWindow string


@description('Log Analytics workspace receiving the diagnostic settings of this module\'s resources.')
param logAnalyticsWorkspaceId string

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    deadLetteringOnMessageExpiration: true
    maxDeliveryCount: maxDeliveryCount
    lockDuration: 'PT5M'
    defaultMessageTimeToLive: 'P14D'
    enableBatchedOperations: true
  }
}

// Diagnostic settings: every resource here that has them sends its logs and metrics to Log Analytics.
// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource namespaceDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}


@description('Namespace resource id.')
output namespaceId string = namespace.id

@description('Fully qualified namespace (ServiceBusConnection__fullyQualifiedNamespace).')
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]

@description('Queue resource id (role assignment scope).')
output queueId string = queue.id

@description('Queue name.')
output queueName string = queue.name

@description('Namespace name.')
output name string = namespace.name
