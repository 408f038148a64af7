metadata description = 'Every role assignment of the system, least privilege, each on the narrowest scope the code needs.'

@description('Name of the function app user-assigned identity.')
param functionIdentityName string

@description('Principal id of the deploying user or pipeline (empty: none). Gets Key Vault Secrets Officer to manage secrets.')
param deployerPrincipalId string

@description('Principal type of deployerPrincipalId.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param deployerPrincipalType string

@description('Runtime storage account name.')
param runtimeStorageName string

@description('Backup storage account name.')
param backupStorageName string

@description('Service Bus namespace name.')
param serviceBusName string

@description('Deploy queue name.')
param queueName string

@description('Key Vault name.')
param keyVaultName string

@description('Application Insights name.')
param applicationInsightsName string

@description('UAT VM name.')
param uatVmName string

@description('PROD VM name.')
param prodVmName string

// Built-in role definition ids (stable across tenants).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: functionIdentityName
}

var functionPrincipalId = functionIdentity.properties.principalId

resource runtimeStorage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: runtimeStorageName
}

resource backupStorage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: backupStorageName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = {
  name: serviceBusName
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' existing = {
  parent: serviceBus
  name: queueName
}

resource keyVault 'Microsoft.KeyVault/vaults@2026-05-15' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource uatVm 'Microsoft.Compute/virtualMachines@2026-04-01' existing = {
  name: uatVmName
}

resource prodVm 'Microsoft.Compute/virtualMachines@2026-04-01' existing = {
  name: prodVmName
}

resource prodDataDisk 'Microsoft.Compute/disks@2026-03-02' existing = {
  name: '${prodVmName}-data'
}

// The function app reads VM power state, starts a deallocated VM and snapshots the PROD data disk:
// a custom role with exactly those actions instead of Virtual Machine Contributor.
// Custom roles are tenant-wide (https://learn.microsoft.com/azure/role-based-access-control/custom-roles):
// a role name built from the resource group name alone collides between two
// subscriptions that use the same one, so the name carries a token of subscription + resource group.
// Long operations (start, snapshot) are polled through Microsoft.Compute/locations/operations: without
// read on it the pipeline's ARM client sees 403 while waiting.
var roleNameSuffix = '${resourceGroup().name}, ${take(guid(subscription().id, resourceGroup().name), 8)}'

resource vmOperatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'odoo-mta-vm-operator')
  properties: {
    roleName: 'odoo-mta VM operator (${roleNameSuffix})'
    description: 'Read VM state and disks, start VMs. Used by the odoo-mta pipeline.'
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: [
          'Microsoft.Compute/virtualMachines/read'
          'Microsoft.Compute/virtualMachines/instanceView/read'
          'Microsoft.Compute/virtualMachines/start/action'
          'Microsoft.Compute/disks/read'
          'Microsoft.Compute/locations/operations/read'
        ]
        notActions: []
      }
    ]
  }
}

resource snapshotWriterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'odoo-mta-snapshot-writer')
  properties: {
    roleName: 'odoo-mta snapshot writer (${roleNameSuffix})'
    description: 'Create and read disk snapshots in this resource group. Used by the odoo-mta pipeline before PROD deploys.'
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: [
          'Microsoft.Compute/snapshots/read'
          'Microsoft.Compute/snapshots/write'
          'Microsoft.Compute/locations/operations/read'
        ]
        notActions: []
      }
    ]
  }
}

// Runtime storage: host leases and deployment package (blob), Durable queues and tables.
resource runtimeBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage.id, functionIdentity.id, roles.storageBlobDataOwner)
  scope: runtimeStorage
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource runtimeQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage.id, functionIdentity.id, roles.storageQueueDataContributor)
  scope: runtimeStorage
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

resource runtimeTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(runtimeStorage.id, functionIdentity.id, roles.storageTableDataContributor)
  scope: runtimeStorage
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Backups and the ledger: read/write blobs, nothing else.
resource backupBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(backupStorage.id, functionIdentity.id, roles.storageBlobDataContributor)
  scope: backupStorage
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// Deploy queue: the intake sends, the queue trigger receives; scoped to the queue, not the namespace.
resource queueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, functionIdentity.id, roles.serviceBusDataSender)
  scope: queue
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

resource queueReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, functionIdentity.id, roles.serviceBusDataReceiver)
  scope: queue
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

// Scale from zero: the Functions Service Bus binding documentation lists Azure Service Bus Data Owner
// with Data Receiver for the trigger (https://learn.microsoft.com/azure/azure-functions/functions-bindings-service-bus#grant-permission-to-the-identity),
// and Microsoft's Flex Consumption Service Bus sample over a private endpoint (E2E/SB-VNET of
// Azure-Samples/azure-functions-flex-consumption-samples) assigns both. With Receiver alone the
// identity cannot read the queue's runtime properties (active message count, a Manage operation),
// which target-based scaling reads to wake an app that has no instance (our reading; the docs list the role without saying why). Scoped to the queue only.
resource queueOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, functionIdentity.id, roles.serviceBusDataOwner)
  scope: queue
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
  }
}

// Key Vault references: read secrets.
resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, functionIdentity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// Telemetry with Entra ID authentication.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, functionIdentity.id, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// VMs: power state and start on each VM; snapshots are new resources, so their write right is on the resource group.
resource uatVmOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(uatVm.id, functionIdentity.id, vmOperatorRole.id)
  scope: uatVm
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: vmOperatorRole.id
  }
}

resource prodVmOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(prodVm.id, functionIdentity.id, vmOperatorRole.id)
  scope: prodVm
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: vmOperatorRole.id
  }
}

// The PROD data disk is the snapshot source: read it.
resource prodDataDiskReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(prodDataDisk.id, functionIdentity.id, vmOperatorRole.id)
  scope: prodDataDisk
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: vmOperatorRole.id
  }
}

resource snapshotWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, functionIdentity.id, snapshotWriterRole.id)
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: snapshotWriterRole.id
  }
}

// The deployer manages secrets (rotation) without being able to read everything else.
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(keyVault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}
