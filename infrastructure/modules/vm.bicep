metadata description = 'One Odoo target VM (UAT or PROD): Ubuntu LTS, Docker via cloud-init, data disk for PostgreSQL and the filestore, no public IP, pinned SSH host key, ops scripts installed.'

@description('Azure region.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Which environment the VM runs: uat or prod.')
@allowed(['uat', 'prod'])
param environment string

@description('VM name.')
param name string

@description('NIC name.')
param nicName string

@description('Subnet of the VM.')
param subnetId string

@description('Static private IP of the VM inside the VM subnet (UAT_SSH_HOST / PROD_SSH_HOST).')
param privateIp string

@description('VM size.')
param size string

@description('Availability zone (empty: none; PROD in a zone survives less, but the data disk must be in the same zone).')
param zone string

@description('OS disk size in GB.')
@minValue(30)
param osDiskSizeGB int

@description('Data disk size in GB (PostgreSQL data and the filestore, mounted at dataDir).')
@minValue(16)
param dataDiskSizeGB int

@description('Data disk SKU.')
@allowed(['Standard_LRS', 'StandardSSD_LRS', 'StandardSSD_ZRS', 'Premium_LRS', 'Premium_ZRS', 'PremiumV2_LRS'])
param dataDiskSku string

@description('Mount point of the data disk.')
param dataDir string

@description('Admin user of the VM (operators, through Bastion or a run command; never SSH from the internet).')
param adminUsername string

@description('SSH public key of the admin user.')
param adminSshPublicKey string

@description('User the pipeline logs in as to run odoo-ops (UAT_SSH_USER / PROD_SSH_USER).')
param opsUser string

@description('SSH public key of the pipeline (the pair of SSH_PRIVATE_KEY in Key Vault).')
param pipelineSshPublicKey string

@description('SSH port.')
param sshPort int

@description('Pinned ed25519 host private key (OpenSSH format) so the host key survives a rebuild (disaster recovery); reaches the VM only as a protected parameter of the install run command, never in custom data.')
@secure()
param hostPrivateKey string

@description('Matching ed25519 host public key (`ssh-ed25519 AAAA...`).')
param hostPublicKey string

@description('Registry URL written to /etc/odoo-ops/env.')
param registryUrl string

@description('Image repository written to /etc/odoo-ops/env.')
param registryRepository string

@description('The odoo-ops script, base64 (empty: download from opsScriptUrl).')
param opsScriptBase64 string

@description('Release URL of the odoo-ops script, used when it is not embedded.')
param opsScriptUrl string

@description('sha256 of the odoo-ops script (checked on the VM; required with opsScriptUrl).')
param opsScriptSha256 string

// The install script runs as a run command (below), not from custom data: custom data is limited
// to 64 KiB and must not carry secrets; the odoo-ops script alone is ~51 KB.
var installOps = reduce(
  items({
    '{{OPS_SCRIPT_B64}}': opsScriptBase64
    '{{OPS_SCRIPT_URL}}': opsScriptUrl
    '{{OPS_SCRIPT_SHA256}}': opsScriptSha256
    '{{HOST_PUBLIC_KEY}}': trim(hostPublicKey)
  }),
  loadTextContent('../cloud-init/install-odoo-ops.sh'),
  (text, p) => replace(text, p.key, p.value)
)

var placeholders = {
  '{{ENVIRONMENT}}': environment
  '{{OPS_USER}}': opsUser
  '{{ADMIN_USER}}': adminUsername
  '{{PIPELINE_PUBLIC_KEY}}': trim(pipelineSshPublicKey)
  '{{DATA_DIR}}': dataDir
  '{{SSH_PORT}}': string(sshPort)
  '{{REGISTRY_URL}}': registryUrl
  '{{REGISTRY_REPOSITORY}}': registryRepository
}

var cloudInitTemplate = reduce(
  items(placeholders),
  loadTextContent('../cloud-init/odoo-vm.yaml'),
  (text, p) => replace(text, p.key, p.value)
)

resource nic 'Microsoft.Network/networkInterfaces@2026-03-01' = {
  name: nicName
  location: location
  tags: tags
  properties: {
    ipConfigurations: [
      {
        name: 'ipconfig1'
        properties: {
          subnet: { id: subnetId }
          privateIPAllocationMethod: 'Static'
          privateIPAddress: privateIp
        }
      }
    ]
  }
}

resource vm 'Microsoft.Compute/virtualMachines@2026-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'odoo-environment': environment })
  zones: empty(zone) ? null : [zone]
  properties: {
    hardwareProfile: { vmSize: size }
    securityProfile: {
      securityType: 'TrustedLaunch'
      uefiSettings: { secureBootEnabled: true, vTpmEnabled: true }
    }
    storageProfile: {
      imageReference: {
        publisher: 'Canonical'
        offer: 'ubuntu-24_04-lts'
        sku: 'server'
        version: 'latest'
      }
      osDisk: {
        name: '${name}-os'
        createOption: 'FromImage'
        diskSizeGB: osDiskSizeGB
        managedDisk: { storageAccountType: 'StandardSSD_LRS' }
        deleteOption: 'Delete'
      }
      dataDisks: [
        {
          name: '${name}-data'
          lun: 0
          createOption: 'Empty'
          diskSizeGB: dataDiskSizeGB
          managedDisk: { storageAccountType: dataDiskSku }
          caching: 'None'
          // Keep the data when the VM is deleted: a rebuilt VM can attach it again.
          deleteOption: 'Detach'
        }
      ]
    }
    osProfile: {
      computerName: name
      adminUsername: adminUsername
      customData: base64(cloudInitTemplate)
      linuxConfiguration: {
        disablePasswordAuthentication: true
        ssh: {
          publicKeys: [
            {
              path: '/home/${adminUsername}/.ssh/authorized_keys'
              keyData: trim(adminSshPublicKey)
            }
          ]
        }
        provisionVMAgent: true
        patchSettings: { patchMode: 'ImageDefault', assessmentMode: 'ImageDefault' }
      }
    }
    networkProfile: {
      networkInterfaces: [{ id: nic.id, properties: { deleteOption: 'Delete' } }]
    }
    diagnosticsProfile: { bootDiagnostics: { enabled: true } }
  }
}

// Lays down odoo-ops and the pinned host key, on creation and on every later deployment (a managed
// run command: the VM agent runs it; protected parameters are not returned by ARM).
resource installOpsCommand 'Microsoft.Compute/virtualMachines/runCommands@2026-04-01' = {
  parent: vm
  name: 'install-odoo-ops'
  location: location
  tags: tags
  properties: {
    source: { script: installOps }
    protectedParameters: [{ name: 'HOST_PRIVATE_KEY', value: hostPrivateKey }]
    asyncExecution: false
    // first boot: the script waits for cloud-init (package installs) before it starts
    timeoutInSeconds: 1800
    treatFailureAsDeploymentFailure: true
  }
}

@description('VM resource id (UAT_VM_RESOURCE_ID / PROD_VM_RESOURCE_ID).')
output id string = vm.id

@description('VM name.')
output name string = vm.name

@description('Private IP of the VM.')
output privateIp string = nic.properties.ipConfigurations[0].properties.privateIPAddress
