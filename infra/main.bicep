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

@allowed([
  ''
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principalId: User, Group or ServicePrincipal. Empty: worked out from the deployer (azd does not set AZURE_PRINCIPAL_TYPE for a .bicepparam file): ServicePrincipal when principalId is the deploying identity and it has no user principal name (a pipeline), User otherwise. Needs Bicep 0.36.1 or later (deployer().userPrincipalName).')
param principalType string = ''

@description('When principalId is a service principal (a pipeline) and createDatabases is true: its application (client) id, which Azure SQL wants as the Entra admin\'s sid (an object id would create an admin nobody can sign in as). Empty for a user or group.')
param principalClientId string = ''

@description('true when the Azure SQL server already exists (every provisioning after the first): its administrators are then not sent again (modules/databases.bicep says why). main.bicepparam sets it from the previous provisioning\'s SQL_SERVER_FQDN output.')
param sqlServerExists bool = false

@description('true: create an Azure SQL database (primary, Entra-only authentication; the app signs in with its managed identity) and an Azure Database for PostgreSQL Flexible Server (fallback). false: bring existing databases through primaryDatabaseUrl and fallbackDatabaseUrl.')
param createDatabases bool = false

@secure()
@description('When createDatabases is false: URL of the existing primary database, sqlserver://... or postgres://... Written to Key Vault only. Empty: the Key Vault secret is left as it is.')
param primaryDatabaseUrl string = ''

@secure()
@description('When createDatabases is false: URL of the existing fallback database. Written to Key Vault only. Empty: the Key Vault secret is left as it is.')
param fallbackDatabaseUrl string = ''

@description('When createDatabases is true: administrator login of the PostgreSQL server (migrations and the app role\'s creation; the app does not use it).')
param postgresAdminLogin string = 'dualsync'

@description('When createDatabases is true: the PostgreSQL role the app connects as, with only the rights it needs. Created once by hand after provisioning (docs/deploy.md).')
param postgresAppLogin string = 'dualsync_app'

@secure()
@description('When createDatabases is true: password of postgresAppLogin. Written to Key Vault only; set the same on the role (docs/deploy.md).')
param postgresAppPassword string = ''

@secure()
@description('When createDatabases is true: password of postgresAdminLogin. Set on the server only (not in Key Vault: the app never uses it). Changing it and provisioning again rotates it. Empty: provisioning stops (scripts/preprovision.sh, and fail() in modules/databases.bicep).')
param postgresAdminPassword string = ''

@description('When createDatabases is true: a public IP address let through both database firewalls, so you can run migrations from your machine. Empty: none.')
param clientIpAddress string = ''

@description('NCRONTAB (six fields, UTC) of NightlyProductSync.')
param nightlySyncSchedule string = '0 0 0 * * *'

@description('NCRONTAB (six fields, UTC) of OutboxRelay.')
param outboxRelaySchedule string = '*/10 * * * * *'

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

@minValue(1)
@maxValue(1000)
@description('Upper bound of instances per scale group: Flex Consumption scales the HTTP functions together and each non-HTTP function on its own, each group up to this many instances. Each instance holds its own database connections, so the default keeps the worst case (every group at this count) within the databases\' limits below (docs/scale.md). Raise it with bigger database tiers.')
param maximumInstanceCount int = 2

@minValue(1)
@description('Connections the primary database accepts from the app in all (Azure SQL Basic: 30 concurrent workers). Each instance gets this / (scale groups x maximumInstanceCount) (app setting PRIMARY_DB_MAX_CONNS), at least 2, or provisioning stops; above the limit SQL Server answers 10928, which the app treats as busy, not down.')
param primaryConnectionLimit int = 30

@minValue(1)
@description('Connections the fallback database accepts from the app in all (PostgreSQL B1ms: max_connections 50, 15 reserved for Azure, 35 for users). Each instance gets this / (scale groups x maximumInstanceCount) (app setting FALLBACK_DB_MAX_CONNS), at least 2, or provisioning stops.')
param fallbackConnectionLimit int = 35

// Security: who may call the API (docs/deploy.md, "Security: keys and Entra ID"). Function keys are
// always required on every route but /api/health; these add Microsoft Entra ID sign-in and CORS.

@description('Client (application) id of the Microsoft Entra app registration that represents this API. Empty (default): no Entra sign-in, function keys alone guard the API. Set: App Service Authentication answers 401 to any call without a valid Entra token, except /api/health; the function key is still required behind it.')
param entraClientId string = ''

@description('Tenant that issues the tokens. Empty: the tenant of this deployment.')
param entraTenantId string = ''

@description('Audiences a token may carry. Empty: api://<entraClientId> and entraClientId.')
param entraAllowedAudiences array = []

@description('Client ids of the applications allowed to call with a token (the token\'s appid/azp). Empty: any application that can get a token for the audience; restrict who can with "Assignment required" on the enterprise application.')
param entraAllowedClientApplications array = []

@description('Origins that browsers may call the API from (CORS), exactly, e.g. https://app.example.com. Empty (default): no cross-origin calls. Wildcards are dropped: never every origin.')
param corsAllowedOrigins array = []

// On call (docs/deploy.md, "On call: alerts and runbook"): alert rules over Application Insights.

@description('false: no action group and no alert rules (infra/alerts.bicep).')
param alertsEnabled bool = true

@description('Email address that receives the alerts. Empty: none (the alerts still show in the portal).')
param alertEmail string = ''

@secure()
@description('HTTPS webhook that receives the alerts (common alert schema). Empty: none.')
param alertWebhookUrl string = ''

@description('Alert thresholds overriding the defaults of infra/alerts.bicep key by key, e.g. {"http5xxCount": 20}.')
param alertThresholds object = {}

@description('Key Vault purge protection: a deleted vault (and its secrets) cannot be purged before its retention ends, even by an owner. On by default; turn it off only for a development environment you recreate often (KEY_VAULT_PURGE_PROTECTION=false). Once on it cannot be turned off.')
param keyVaultPurgeProtection bool = true

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))

// Role assignments fail with UnmatchedPrincipalType when the type is wrong, and azd fills
// AZURE_PRINCIPAL_TYPE only for main.parameters.json, not for a .bicepparam file.
var effectivePrincipalType = !empty(principalType)
  ? principalType
  : (principalId == deployer().objectId && empty(deployer().userPrincipalName) ? 'ServicePrincipal' : 'User')
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
    principalType: effectivePrincipalType
    principalClientId: principalClientId
    sqlServerExists: sqlServerExists
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
    principalType: effectivePrincipalType
    createDatabases: createDatabases
    sqlServerFqdn: createDatabases ? databases!.outputs.sqlServerFqdn : ''
    sqlDatabaseName: createDatabases ? databases!.outputs.sqlDatabaseName : ''
    postgresFqdn: createDatabases ? databases!.outputs.postgresFqdn : ''
    postgresDatabaseName: createDatabases ? databases!.outputs.postgresDatabaseName : ''
    postgresAppLogin: postgresAppLogin
    postgresAppPassword: postgresAppPassword
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
    primaryConnectionLimit: primaryConnectionLimit
    fallbackConnectionLimit: fallbackConnectionLimit

    entraClientId: entraClientId
    entraTenantId: entraTenantId
    entraAllowedAudiences: entraAllowedAudiences
    entraAllowedClientApplications: entraAllowedClientApplications
    corsAllowedOrigins: corsAllowedOrigins
    keyVaultPurgeProtection: keyVaultPurgeProtection
  }
}

module alerts 'alerts.bicep' = if (alertsEnabled) {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    applicationInsightsId: resourceId(subscription().subscriptionId, rg.name, 'Microsoft.Insights/components', app.outputs.applicationInsightsName)
    alertEmail: alertEmail
    alertWebhookUrl: alertWebhookUrl
    thresholds: alertThresholds
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
output APP_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output APPLICATIONINSIGHTS_NAME string = app.outputs.applicationInsightsName
output ENTRA_AUTH_ENABLED bool = !empty(entraClientId)
// With Entra sign-in on, a browser signs in here first and lands on the dashboard (docs/deploy.md).
output DASHBOARD_SIGN_IN_URL string = empty(entraClientId) ? '' : '${app.outputs.functionAppUrl}/.auth/login/aad?post_login_redirect_uri=/api/dashboard'
output LOG_ANALYTICS_WORKSPACE_NAME string = app.outputs.logAnalyticsWorkspaceName
output SQL_SERVER_FQDN string = createDatabases ? databases!.outputs.sqlServerFqdn : ''
output SQL_DATABASE_NAME string = createDatabases ? databases!.outputs.sqlDatabaseName : ''
output POSTGRES_SERVER_FQDN string = createDatabases ? databases!.outputs.postgresFqdn : ''
output POSTGRES_DATABASE_NAME string = createDatabases ? databases!.outputs.postgresDatabaseName : ''
