metadata description = 'The pipeline function app on Flex Consumption: Node 22, user-assigned identity, identity-based connections, Key Vault references, VNet integration, always-ready instance for Durable.'

@description('Azure region.')
param location string

@description('Tags put on every resource (the site also gets azd-service-name).')
param tags object

@description('Plan name.')
param planName string

@description('Function app name.')
param name string

@description('azd service name (tag `azd-service-name`).')
param azdServiceName string

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Runtime storage account name (AzureWebJobsStorage__accountName).')
param runtimeStorageName string

@description('Blob container URL of the deployment package.')
param deploymentContainerUrl string

@description('Subnet for VNet integration (delegated to Microsoft.App/environments).')
param subnetId string

@description('Node.js version (Node 20 is end of life: deploy on 22; the code stays Node 20 compatible).')
@allowed(['20', '22'])
param nodeVersion string

@description('Maximum instances of the app (40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Instance memory in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int

@description('Always-ready instances of the `durable` group (1 keeps orchestrations moving without a cold start).')
@minValue(0)
@maxValue(10)
param durableAlwaysReady int

@description('Always-ready instances of the `http` group (every HTTP function): the GitHub webhook must be answered within 10 s and a Slack button within 3 s, a cold start can take longer.')
@minValue(0)
@maxValue(10)
param httpAlwaysReady int

@description('Name of the Service Bus queue trigger function (its own scale group `function:<name>` on Flex).')
param queueFunctionName string

@description('Always-ready instances of the queue trigger function (needed when the platform cannot watch the queue from outside, i.e. Service Bus Standard behind its IP firewall).')
@minValue(0)
@maxValue(10)
param queueAlwaysReady int

@description('Public base URL; empty: https:// + the default host name of the app.')
param publicBaseUrl string

@description('Entra ID app registration (client id) for App Service Authentication; empty: authentication off.')
param entraAuthClientId string

@description('true: the registration\'s client secret is in the app setting MICROSOFT_PROVIDER_AUTHENTICATION_SECRET; false: ID tokens only.')
param entraAuthConfidentialClient bool

@description('Pipeline settings (names from shared/config.ts): plain values and Key Vault references.')
param pipelineSettings object


@description('Log Analytics workspace receiving the diagnostic settings of this module\'s resources.')
param logAnalyticsWorkspaceId string

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2025-03-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': azdServiceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: subnetId
    // Every outbound call (Key Vault references, storage, Service Bus, GitHub, Slack) leaves through the
    // VNet: the private endpoints resolve through the linked privatelink zones, the rest through the
    // NAT gateway (https://learn.microsoft.com/azure/app-service/configure-vnet-integration-routing).
    outboundVnetRouting: { allTraffic: true }
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      vnetRouteAllEnabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: filter(
          [
            { name: 'durable', instanceCount: durableAlwaysReady }
            { name: 'http', instanceCount: httpAlwaysReady }
            { name: 'function:${queueFunctionName}', instanceCount: queueAlwaysReady }
          ],
          g => g.instanceCount > 0
        )
      }
      runtime: { name: 'node', version: nodeVersion }
    }
  }
}

// Platform settings for Flex: no FUNCTIONS_WORKER_RUNTIME / WEBSITE_RUN_FROM_PACKAGE / content share.
var platformSettings = {
  AzureWebJobsStorage__accountName: runtimeStorageName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  PIPELINE_RUNTIME: 'azure'
}

// Basic (FTP and SCM/Kudu user + password) publishing credentials off: deployments authenticate with
// Microsoft Entra ID only (https://learn.microsoft.com/azure/app-service/configure-basic-auth-disable).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

resource appSettings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: site
  name: 'appsettings'
  properties: union(platformSettings, pipelineSettings, {
    PUBLIC_BASE_URL: empty(publicBaseUrl) ? 'https://${site.properties.defaultHostName}' : publicBaseUrl
  })
}

// App Service Authentication (Entra ID): signs approvers in on the web approval pages and — the part
// the trust model rests on — strips every client-sent X-MS-CLIENT-PRINCIPAL* header before the worker
// sees the request. The app reads those headers only when the platform says this is on
// (WEBSITE_AUTH_ENABLED=True, set by App Service). Unauthenticated requests are let through (GitHub's
// webhook, Slack's interactions, function-key callers, the approval GET): each route checks what it needs.
// Only this tenant's accounts are accepted (the issuer names the tenant).
resource authSettings 'Microsoft.Web/sites/config@2025-03-01' = if (!empty(entraAuthClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraAuthClientId
          clientSecretSettingName: entraAuthConfidentialClient ? 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET' : null
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            entraAuthClientId
            'api://${entraAuthClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

// Diagnostic settings: every resource here that has them sends its logs and metrics to Log Analytics.
// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource siteDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}


@description('Function app resource id.')
output id string = site.id

@description('Function app name.')
output name string = site.name

@description('Default host name of the function app.')
output defaultHostName string = site.properties.defaultHostName
