// dualsync in Azure: a Flex Consumption Function App (Go custom handler) with identity-based
// access to its storage, Key Vault references for the two database URLs, and optionally the two
// databases themselves. Subscription scope so that `azd up` and `az deployment sub create` both
// create the resource group.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (the azd environment name). Used in the resource group name and to derive unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region for every resource. It must offer Flex Consumption: az functionapp list-flexconsumption-locations -o table')
param location string

@description('Resource group to create or reuse. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person or pipeline deploying. Gets Key Vault Secrets Officer (to rotate the database URLs), Storage Table Data Reader and Storage Queue Data Reader (to read sync results and queues), and becomes the Entra admin of created databases. Empty: none of that.')
param principalId string = ''

@description('Sign-in name (UPN) or display name of principalId. Required when createDatabases is true: the Entra admin login of both database servers.')
param principalName string = ''

@description('Kind of principalId: User, Group or ServicePrincipal.')
param principalType string = 'User'

@description('true: create an Azure SQL database (primary, Entra-only authentication; the app signs in with its managed identity) and an Azure Database for PostgreSQL Flexible Server (fallback). false: bring existing databases through primaryDatabaseUrl and fallbackDatabaseUrl.')
param createDatabases bool = false

@secure()
@description('When createDatabases is false: URL of the existing primary database, sqlserver://... or postgres://... Written to Key Vault only. Empty: the Key Vault secret is left as it is.')
param primaryDatabaseUrl string = ''

@secure()
@description('When createDatabases is false: URL of the existing fallback database. Written to Key Vault only. Empty: the Key Vault secret is left as it is.')
param fallbackDatabaseUrl string = ''

@description('When createDatabases is true: administrator login of the PostgreSQL server; the app connects with it.')
param postgresAdminLogin string = 'dualsync'

@secure()
@description('When createDatabases is true: password of postgresAdminLogin. Set on the server and written to Key Vault, nowhere else. Changing it and provisioning again rotates it.')
param postgresAdminPassword string = ''

@description('When createDatabases is true: a public IP address let through both database firewalls, so you can run migrations from your machine. Empty: none.')
param clientIpAddress string = ''

@description('NCRONTAB (six fields, UTC) of NightlyProductSync.')
param nightlySyncSchedule string = '0 0 0 * * *'

@description('NCRONTAB (six fields, UTC) of OutboxRelay.')
param outboxRelaySchedule string = '0 * * * * *'

@description('Connect timeout per database. Longer than locally: TLS, token acquisition and a resuming serverless database take longer.')
param dbConnectTimeout string = '5s'

@description('Timeout of one API database operation.')
param dbQueryTimeout string = '10s'

@description('How long the breaker stays open before probing the primary again.')
param breakerCooldown string = '30s'

@description('How long after sending an outbox entry OutboxRelay sends it again if sync has not acknowledged it.')
param outboxResendAfter string = '60s'

@description('Concurrent after-commit publishes per instance (writes answer before their sync message is sent).')
param publishWorkers string = '4'

@description('Committed changes waiting for a publish per instance; beyond it OutboxRelay sends them.')
param publishBuffer string = '1024'

@description('On shutdown or scale-in, how long an instance keeps publishing what it holds; the rest stays in the outbox.')
param publishDrainTimeout string = '3s'

@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
@description('Handler log level.')
param logLevel string = 'info'

@allowed([
  512
  2048
  4096
])
@description('Memory of one Flex Consumption instance in MB. The Go handler needs little; billing is per GB-second.')
param instanceMemoryMB int = 512

@minValue(40)
@maxValue(1000)
@description('Upper bound of instances. Each instance holds its own database connections.')
param maximumInstanceCount int = 40

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  app: 'dualsync'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module databases 'modules/databases.bicep' = if (createDatabases) {
  name: 'databases'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    principalName: principalName
    principalType: principalType
    postgresAdminLogin: postgresAdminLogin
    postgresAdminPassword: postgresAdminPassword
    clientIpAddress: clientIpAddress
  }
}

module app 'modules/app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    principalType: principalType
    createDatabases: createDatabases
    sqlServerFqdn: createDatabases ? databases!.outputs.sqlServerFqdn : ''
    sqlDatabaseName: createDatabases ? databases!.outputs.sqlDatabaseName : ''
    postgresFqdn: createDatabases ? databases!.outputs.postgresFqdn : ''
    postgresDatabaseName: createDatabases ? databases!.outputs.postgresDatabaseName : ''
    postgresAdminLogin: postgresAdminLogin
    postgresAdminPassword: postgresAdminPassword
    primaryDatabaseUrl: primaryDatabaseUrl
    fallbackDatabaseUrl: fallbackDatabaseUrl
    nightlySyncSchedule: nightlySyncSchedule
    outboxRelaySchedule: outboxRelaySchedule
    dbConnectTimeout: dbConnectTimeout
    dbQueryTimeout: dbQueryTimeout
    breakerCooldown: breakerCooldown
    outboxResendAfter: outboxResendAfter
    publishWorkers: publishWorkers
    publishBuffer: publishBuffer
    publishDrainTimeout: publishDrainTimeout
    logLevel: logLevel
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output FUNCTION_APP_URL string = app.outputs.functionAppUrl
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output AZURE_KEY_VAULT_NAME string = app.outputs.keyVaultName
output APP_IDENTITY_NAME string = app.outputs.identityName
output APP_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output APPLICATIONINSIGHTS_NAME string = app.outputs.applicationInsightsName
output LOG_ANALYTICS_WORKSPACE_NAME string = app.outputs.logAnalyticsWorkspaceName
output SQL_SERVER_FQDN string = createDatabases ? databases!.outputs.sqlServerFqdn : ''
output SQL_DATABASE_NAME string = createDatabases ? databases!.outputs.sqlDatabaseName : ''
output POSTGRES_SERVER_FQDN string = createDatabases ? databases!.outputs.postgresFqdn : ''
output POSTGRES_DATABASE_NAME string = createDatabases ? databases!.outputs.postgresDatabaseName : ''
