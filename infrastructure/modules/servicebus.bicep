metadata description = 'Service Bus namespace with the deploy queue, closed to the internet: Premium with public network access disabled (private endpoint), or Standard behind an IP firewall that admits only the given addresses.'

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

@description('Tier: Premium (private endpoint, public network access disabled) or Standard (no private endpoints in that tier: IP firewall with allowedIpAddresses only).')
@allowed(['Premium', 'Standard'])
param sku string

@description('Standard only: the only public addresses the namespace accepts (the NAT gateway of the VNet). Ignored on Premium.')
param allowedIpAddresses array


@description('Log Analytics workspace receiving the diagnostic settings of this module\'s resources.')
param logAnalyticsWorkspaceId string

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' = {
  name: name
  location: location
  tags: tags
  sku: sku == 'Premium' ? { name: 'Premium', tier: 'Premium', capacity: 1 } : { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: sku == 'Premium' ? 'Disabled' : 'Enabled'
  }
}

// The namespace's network rule set: deny by default. On Premium public access is off altogether and
// only the private endpoint reaches it; Standard has no private endpoints, so its public endpoint admits
// only the listed addresses (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-ip-filtering).
// No trusted-services bypass: Standard does not offer it and nothing here needs it.
resource networkRules 'Microsoft.ServiceBus/namespaces/networkRuleSets@2026-01-01' = {
  parent: namespace
  name: 'default'
  properties: {
    publicNetworkAccess: sku == 'Premium' ? 'Disabled' : 'Enabled'
    defaultAction: 'Deny'
    trustedServiceAccessEnabled: false
    ipRules: sku == 'Premium' ? [] : map(allowedIpAddresses, ip => { ipMask: ip, action: 'Allow' })
    virtualNetworkRules: []
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
