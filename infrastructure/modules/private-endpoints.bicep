metadata description = 'Private endpoints of Key Vault, both storage accounts and Service Bus in the private endpoint subnet, with their privatelink DNS zones linked to the VNet: the function app (VNet integration) and the VMs reach them on private addresses while their public endpoints are closed.'

@description('Azure region of the private endpoints (the DNS zones are global).')
param location string

@description('Tags put on every resource.')
param tags object

@description('Name suffix of every private endpoint (the resource token).')
param nameSuffix string

@description('Resource id of the VNet the DNS zones are linked to.')
param vnetId string

@description('Resource id of the subnet holding the private endpoints.')
param subnetId string

@description('Resource id of the Key Vault.')
param keyVaultId string

@description('Resource id of the function app runtime storage account (AzureWebJobsStorage, Durable queues and tables, Flex deployment container).')
param runtimeStorageId string

@description('Resource id of the backup storage account (backups and ledger, blob only).')
param backupStorageId string

@description('Resource id of the Service Bus namespace.')
param serviceBusId string

@description('Whether Service Bus gets a private endpoint (Premium only; Standard is closed by IP rules instead).')
param serviceBusPrivateEndpoint bool

// Zone per sub-resource (groupId), as listed in "Azure Private Endpoint private DNS zone values"
// (https://learn.microsoft.com/azure/private-link/private-endpoint-dns). No `file` zone: Flex
// Consumption keeps its package in a blob container and no code uses Azure Files.
var zones = {
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  vault: 'privatelink.vaultcore.azure.net'
  namespace: 'privatelink.servicebus.windows.net'
}

// One entry per private endpoint: which resource, which sub-resource (groupId), which zone.
var endpoints = concat(
  [
    { name: 'pe-kv-${nameSuffix}', target: keyVaultId, groupId: 'vault' }
    { name: 'pe-stfn-blob-${nameSuffix}', target: runtimeStorageId, groupId: 'blob' }
    { name: 'pe-stfn-queue-${nameSuffix}', target: runtimeStorageId, groupId: 'queue' }
    { name: 'pe-stfn-table-${nameSuffix}', target: runtimeStorageId, groupId: 'table' }
    { name: 'pe-stbk-blob-${nameSuffix}', target: backupStorageId, groupId: 'blob' }
  ],
  serviceBusPrivateEndpoint ? [{ name: 'pe-sb-${nameSuffix}', target: serviceBusId, groupId: 'namespace' }] : []
)

var zoneKeys = serviceBusPrivateEndpoint
  ? ['blob', 'queue', 'table', 'vault', 'namespace']
  : ['blob', 'queue', 'table', 'vault']

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for key in zoneKeys: {
    name: zones[key]
    location: 'global'
    tags: tags
  }
]

// Linked to the VNet: every subnet (function app, VMs) resolves the public names to the private
// endpoints' addresses through Azure DNS.
resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (key, i) in zoneKeys: {
    parent: zone[i]
    name: 'vnet-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: { id: vnetId }
    }
  }
]

resource endpoint 'Microsoft.Network/privateEndpoints@2026-03-01' = [
  for e in endpoints: {
    name: e.name
    location: location
    tags: tags
    properties: {
      subnet: { id: subnetId }
      privateLinkServiceConnections: [
        {
          name: e.name
          properties: {
            privateLinkServiceId: e.target
            groupIds: [e.groupId]
          }
        }
      ]
    }
  }
]

// The endpoint writes its A record into the zone of its groupId.
resource endpointDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2026-03-01' = [
  for (e, i) in endpoints: {
    parent: endpoint[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: replace(zones[e.groupId], '.', '-')
          properties: {
            privateDnsZoneId: resourceId('Microsoft.Network/privateDnsZones', zones[e.groupId])
          }
        }
      ]
    }
    dependsOn: [zone]
  }
]

@description('Names of the private endpoints.')
output endpointNames array = [for (e, i) in endpoints: endpoint[i].name]
