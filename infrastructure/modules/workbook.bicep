metadata description = 'Azure Portal workbook over the pipeline custom events and metrics (deploys, durations, failures, rollbacks, approval waits, backup sizes).'

@description('Azure region.')
param location string

@description('Tags put on every resource.')
param tags object

@description('Display name of the workbook.')
param displayName string

@description('Name of the Application Insights component the workbook queries (same resource group).')
param applicationInsightsName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, applicationInsightsName, 'odoo-mta-pipeline-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: string(union(loadJsonContent('../workbooks/pipeline.workbook.json'), {
      fallbackResourceIds: [applicationInsights.id]
    }))
  }
}

@description('Workbook resource id.')
output id string = workbook.id
