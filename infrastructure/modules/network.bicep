metadata description = 'VNet with a subnet for the function app (VNet integration), one for the VMs and one for the private endpoints; NSG closed to the internet; NAT gateway for outbound only.'

@description('Azure region.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Virtual network name.')
param vnetName string

@description('NSG name of the VM subnet.')
param vmNsgName string

@description('NSG name of the function app subnet.')
param functionNsgName string

@description('NAT gateway name (outbound internet for VMs and the function app: apt, registry, GitHub, Slack).')
param natGatewayName string

@description('Public IP of the NAT gateway (outbound only, nothing listens on it).')
param natPublicIpName string

@description('Address space of the VNet.')
param addressPrefix string

@description('Subnet of the function app (delegated to Microsoft.App/environments, at least /27).')
param functionSubnetPrefix string

@description('Subnet of the UAT and PROD VMs.')
param vmSubnetPrefix string

@description('Subnet of the private endpoints of Key Vault, both storage accounts and Service Bus (the function subnet is delegated and cannot hold them).')
param privateEndpointSubnetPrefix string

@description('SSH port the VMs listen on.')
param sshPort int


@description('Log Analytics workspace receiving the diagnostic settings of this module\'s resources.')
param logAnalyticsWorkspaceId string

resource natPublicIp 'Microsoft.Network/publicIPAddresses@2026-03-01' = {
  name: natPublicIpName
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: { publicIPAllocationMethod: 'Static', publicIPAddressVersion: 'IPv4' }
}

resource natGateway 'Microsoft.Network/natGateways@2026-03-01' = {
  name: natGatewayName
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: {
    idleTimeoutInMinutes: 10
    publicIpAddresses: [{ id: natPublicIp.id }]
  }
}

resource vmNsg 'Microsoft.Network/networkSecurityGroups@2026-03-01' = {
  name: vmNsgName
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-ssh-from-function-subnet'
        properties: {
          description: 'Only the function app (VNet integration) reaches SSH.'
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: functionSubnetPrefix
          sourcePortRange: '*'
          destinationAddressPrefix: vmSubnetPrefix
          destinationPortRange: string(sshPort)
        }
      }
      {
        name: 'allow-http-from-vnet'
        properties: {
          description: 'Odoo (HTTP/HTTPS) for health checks from the function app and for clients inside the network (VPN, Application Gateway, Front Door Private Link).'
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: vmSubnetPrefix
          destinationPortRanges: ['80', '443']
        }
      }
      {
        name: 'deny-ssh-from-elsewhere'
        properties: {
          description: 'SSH from anywhere else in the network is refused.'
          priority: 200
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: string(sshPort)
        }
      }
      {
        name: 'deny-internet-inbound'
        properties: {
          description: 'Nothing comes in from the internet.'
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource functionNsg 'Microsoft.Network/networkSecurityGroups@2026-03-01' = {
  name: functionNsgName
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'deny-internet-inbound'
        properties: {
          description: 'The integration subnet carries outbound traffic only.'
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2026-03-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressPrefix] }
    subnets: [
      {
        name: 'snet-function'
        properties: {
          addressPrefix: functionSubnetPrefix
          networkSecurityGroup: { id: functionNsg.id }
          natGateway: { id: natGateway.id }
          defaultOutboundAccess: false
          delegations: [
            {
              name: 'flex-consumption'
              properties: { serviceName: 'Microsoft.App/environments' }
            }
          ]
        }
      }
      {
        name: 'snet-vm'
        properties: {
          addressPrefix: vmSubnetPrefix
          networkSecurityGroup: { id: vmNsg.id }
          natGateway: { id: natGateway.id }
          defaultOutboundAccess: false
        }
      }
      {
        name: 'snet-private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          defaultOutboundAccess: false
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

// Diagnostic settings: every resource here that has them sends its logs and metrics to Log Analytics.
// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource vmNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vmNsg
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
  }
}

// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource functionNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: functionNsg
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
  }
}

// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource natPublicIpDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: natPublicIp
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource natGatewayDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: natGateway
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

// 2021-05-01-preview: the diagnostic settings version with category groups (allLogs); the linter lists only 2016-09-01
#disable-next-line use-recent-api-versions
resource vnetDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vnet
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}


@description('Resource id of the function app subnet.')
output functionSubnetId string = vnet.properties.subnets[0].id

@description('Resource id of the VM subnet.')
output vmSubnetId string = vnet.properties.subnets[1].id

@description('Resource id of the private endpoint subnet.')
output privateEndpointSubnetId string = vnet.properties.subnets[2].id

@description('Resource id of the VNet (private DNS zones are linked to it).')
output vnetId string = vnet.id

@description('Outbound public IP (allow-list it at the registry or GitHub if needed).')
output outboundIp string = natPublicIp.properties.ipAddress
