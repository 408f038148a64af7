metadata description = 'Key Vault in RBAC mode holding the pipeline secrets, closed to the internet (private endpoint). Only non-empty secrets are written.'

@description('Azure region.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Purge protection: a deleted vault cannot be purged during the soft-delete period (recommended for PROD).')
param enablePurgeProtection bool

@description('Days a deleted vault or secret can be recovered (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int

@description('Secrets to store: secret name -> value. Empty values are skipped.')
@secure()
param secrets object


@description('Log Analytics workspace receiving the diagnostic settings of this module\'s resources.')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: enablePurgeProtection ? true : null
    // Closed to the internet: reached through its private endpoint only (private-endpoints.bicep).
    // Secrets below are written by ARM through the Key Vault resource provider (control plane),
    // which the vault's network rules do not govern.
    publicNetworkAccess: 'Disabled'
    networkAcls: { bypass: 'None', defaultAction: 'Deny', ipRules: [], virtualNetworkRules: [] }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2026-05-15' = [
  for item in filter(items(secrets), s => !empty(s.value)): {
    parent: vault
    name: item.key
    properties: {
      value: item.value
      contentType: 'text/plain'
    }
  }
]

// Diagnostic settings: every resource here that has them sends its logs and metrics to Log Analytics.
// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}


@description('Key Vault name.')
output name string = vault.name

@description('Key Vault resource id.')
output id string = vault.id

@description('Key Vault URI, ending with a slash.')
output uri string = vault.properties.vaultUri
