// The Function App and everything it needs: a user-assigned identity, a storage account without
// shared keys (host storage, deployment container, the app's queues and tables), Application
// Insights on Log Analytics with Entra-only ingestion, a Key Vault holding the two database URLs,
// the Flex Consumption plan and app, and the role assignments that make identity-based access work.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Suffix that makes the names unique.')
param resourceToken string

@description('Object id of the person or pipeline deploying (Key Vault Secrets Officer, Storage Table Data Reader, Storage Queue Data Reader). Empty: no assignments.')
param principalId string

@description('Kind of principalId: User, Group or ServicePrincipal.')
param principalType string

@description('true: the database URLs are built for the databases created by databases.bicep.')
param createDatabases bool

@description('Created Azure SQL server host name (createDatabases).')
param sqlServerFqdn string

@description('Created Azure SQL database name (createDatabases).')
param sqlDatabaseName string

@description('Created PostgreSQL server host name (createDatabases).')
param postgresFqdn string

@description('Created PostgreSQL database name (createDatabases).')
param postgresDatabaseName string

@description('PostgreSQL role the app connects as (createDatabases).')
param postgresAppLogin string

@secure()
@description('Password of postgresAppLogin (createDatabases).')
param postgresAppPassword string

@secure()
@description('Existing primary database URL (not createDatabases). Empty: leave the Key Vault secret as it is.')
param primaryDatabaseUrl string

@secure()
@description('Existing fallback database URL (not createDatabases). Empty: leave the Key Vault secret as it is.')
param fallbackDatabaseUrl string

@description('NCRONTAB of NightlyProductSync (app setting NightlySyncSchedule).')
param nightlySyncSchedule string

@allowed([
  'full'
  'diff'
  'verify'
])
@description('App setting NightlySyncMode: how the nightly runs compare (README, Run modes).')
param nightlySyncMode string = 'diff'

@description('NCRONTAB of OutboxRelay (app setting OutboxRelaySchedule).')
param outboxRelaySchedule string

@description('App setting DB_CONNECT_TIMEOUT.')
param dbConnectTimeout string

@description('App setting DB_QUERY_TIMEOUT.')
param dbQueryTimeout string

@description('App setting BREAKER_COOLDOWN.')
param breakerCooldown string

@description('App setting OUTBOX_RESEND_AFTER.')
param outboxResendAfter string

@minValue(1)
@maxValue(32)
@description('App setting SYNC_RESULT_PARTITIONS: Table Storage partitions per sync run (docs/scale.md).')
param syncResultPartitions int = 8

@description('App setting PUBLISH_WORKERS.')
param publishWorkers string

@description('App setting PUBLISH_BUFFER.')
param publishBuffer string

@description('App setting PUBLISH_DRAIN_TIMEOUT.')
param publishDrainTimeout string

@description('App setting LOG_LEVEL.')
param logLevel string

@description('Memory of one instance in MB.')
param instanceMemoryMB int

@description('Upper bound of instances.')
param maximumInstanceCount int

@description('Connections the primary database accepts from the app in all.')
param primaryConnectionLimit int

@description('Connections the fallback database accepts from the app in all.')
param fallbackConnectionLimit int

@description('Entra app registration of the API. Empty: no App Service Authentication.')
param entraClientId string

@description('Tenant issuing the tokens. Empty: this deployment\'s tenant.')
param entraTenantId string

@description('Accepted token audiences. Empty: api://<entraClientId> and entraClientId.')
param entraAllowedAudiences array

@description('Client ids allowed to call with a token. Empty: no restriction by application.')
param entraAllowedClientApplications array

@description('CORS origins; wildcards are dropped.')
param corsAllowedOrigins array

@description('Key Vault purge protection (main.bicep).')
param keyVaultPurgeProtection bool

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageTableDataReaderRoleId = '76199698-9eea-4c19-bc75-cec21354c6b6'
var storageQueueDataReaderRoleId = '19e7f393-937e-4f77-808e-94535e297925'
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

// Names the app agrees on (docs/architecture.md): the queues, with the poison queues the host
// moves failed messages to, and the tables.
var queueNames = [
  'sync-plan'
  'sync-plan-poison'
  'product-sync'
  'product-sync-poison'
]
var tableNames = [
  'SyncRuns'
  'SyncResults'
]

var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package'
var primarySecretName = 'primary-database-url'
var fallbackSecretName = 'fallback-database-url'

// With created databases: the primary is Azure SQL reached with the app's managed identity
// (go-mssqldb fedauth, no secret in the URL); the fallback is PostgreSQL as the app's own
// least-privilege role, never the administrator.
var primaryUrl = createDatabases ? 'sqlserver://${sqlServerFqdn}?database=${sqlDatabaseName}&encrypt=true&fedauth=ActiveDirectoryManagedIdentity&user%20id=${appIdentity.properties.clientId}' : primaryDatabaseUrl
// verify-full checks the server's certificate chain and host name; sslrootcert=system makes pgx
// verify against the system's root store (pgconn's configTLS), which holds the roots Azure Database
// for PostgreSQL's certificates chain to (DigiCert Global Root G2, Microsoft RSA Root CA 2017:
// https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-networking-ssl-tls).
// sslmode=require would encrypt without checking who answers. infra/tls_test.go connects with it.
var fallbackUrl = createDatabases ? 'postgres://${postgresAppLogin}:${uriComponent(postgresAppPassword)}@${postgresFqdn}:5432/${postgresDatabaseName}?sslmode=verify-full&sslrootcert=system' : fallbackDatabaseUrl

// Each instance has its own pools, and Flex Consumption applies maximumInstanceCount per scale
// group: all HTTP functions together, each other function on its own
// (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#per-function-scaling).
// This app has 7 groups (HTTP; SyncProduct, SyncProductPoison, PlanProductSync,
// PlanProductSyncPoison; NightlyProductSync, OutboxRelay), each up to maximumInstanceCount
// instances, so the worst case is scaleGroups x maximumInstanceCount instances, and integer
// division keeps their pools within each database's limit. Fewer than 2 per instance (one slow
// call would queue all others) stops provisioning: lower maximumInstanceCount or raise the limit.
// infra/connections_test.go keeps scaleGroups equal to what functions/ declares.
var scaleGroups = 7
var worstCaseInstances = scaleGroups * maximumInstanceCount
var primaryMaxConns = primaryConnectionLimit / worstCaseInstances >= 2
  ? primaryConnectionLimit / worstCaseInstances
  : fail('primaryConnectionLimit / (7 scale groups x maximumInstanceCount) is below 2 connections per instance: lower maximumInstanceCount (docs/scale.md).')
var fallbackMaxConns = fallbackConnectionLimit / worstCaseInstances >= 2
  ? fallbackConnectionLimit / worstCaseInstances
  : fail('fallbackConnectionLimit / (7 scale groups x maximumInstanceCount) is below 2 connections per instance: lower maximumInstanceCount (docs/scale.md).')

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${resourceToken}'
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // Once on it cannot be turned off, and false is refused on a vault that has it: null leaves it out.
    enablePurgeProtection: keyVaultPurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

// A secret is written only when there is a value, so provisioning again without the URLs keeps
// a secret that was rotated directly in Key Vault.
resource primarySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createDatabases || !empty(primaryDatabaseUrl)) {
  parent: keyVault
  name: primarySecretName
  properties: {
    value: primaryUrl
    contentType: 'text/plain'
  }
}

resource fallbackSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createDatabases || !empty(fallbackDatabaseUrl)) {
  parent: keyVault
  name: fallbackSecretName
  properties: {
    // A URL with an empty password would replace a working secret with a broken one: stop instead
    // (scripts/preprovision.sh stops azd earlier).
    value: createDatabases && empty(postgresAppPassword)
      ? fail('POSTGRES_APP_PASSWORD is empty; the fallback URL secret is left as it is. Set it (docs/deploy.md) and provision again.')
      : fallbackUrl
    contentType: 'text/plain'
  }
}

// Without a URL to write, the secret must already be there (from an earlier provisioning, or
// rotated in Key Vault). The app settings read these when so, which makes provisioning fail
// with "secrets/primary-database-url ... not found" instead of starting an app whose Key Vault
// references cannot resolve (set AZURE_PRIMARY_DATABASE_URL / AZURE_FALLBACK_DATABASE_URL).
resource primarySecretKept 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (!createDatabases && empty(primaryDatabaseUrl)) {
  parent: keyVault
  name: primarySecretName
}

resource fallbackSecretKept 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (!createDatabases && empty(fallbackDatabaseUrl)) {
  parent: keyVault
  name: fallbackSecretName
}

var primarySecretUri = createDatabases || !empty(primaryDatabaseUrl) ? primarySecret!.properties.secretUri : primarySecretKept!.properties.secretUri
var fallbackSecretUri = createDatabases || !empty(fallbackDatabaseUrl) ? fallbackSecret!.properties.secretUri : fallbackSecretKept!.properties.secretUri

// Role assignments for the app's identity.

resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, storageQueueDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, storageTableDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appIdentity.id, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, appIdentity.id, keyVaultSecretsUserRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Role assignments for the person deploying: rotate secrets, read sync results, peek at queues.

resource deployerKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(keyVault.id, principalId, keyVaultSecretsOfficerRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: principalId
    principalType: principalType
  }
}

resource deployerTableDataReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, storageTableDataReaderRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReaderRoleId)
    principalId: principalId
    principalType: principalType
  }
}

resource deployerQueueDataReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, storageQueueDataReaderRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataReaderRoleId)
    principalId: principalId
    principalType: principalType
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: appIdentity.id
    // No ftpsState: Flex Consumption rejects it (there is no FTP on Flex).
    siteConfig: {
      minTlsVersion: '1.2'
      // Browsers may call only from the listed origins: never '*', nor any wildcard.
      cors: {
        allowedOrigins: filter(corsAllowedOrigins, origin => !contains(origin, '*'))
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
  // The site reads its package from the container with the identity from its first start.
  dependsOn: [
    deploymentContainer
    appBlobDataOwner
  ]
}

// No publishing with user names and passwords: deployments use Entra tokens.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// Microsoft Entra ID sign-in (App Service Authentication), only when entraClientId is set. It runs
// before the Functions host: a call without a valid token for an allowed audience gets 401 (an API
// has no login page to redirect to) and never reaches the host. The one exception is the anonymous
// health probe, so load balancers and monitors need no token. Behind it the function key is still
// checked: a token alone opens nothing, nor does a key alone (docs/deploy.md says why).
var entraEnabled = !empty(entraClientId)
var entraTenant = empty(entraTenantId) ? tenant().tenantId : entraTenantId

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (entraEnabled) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/api/health'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenant}/v2.0'
        }
        validation: {
          allowedAudiences: empty(entraAllowedAudiences) ? [
            'api://${entraClientId}'
            entraClientId
          ] : entraAllowedAudiences
          // A browser signed in to the dashboard holds a token issued to the API's own registration,
          // so a restricted list must name it too.
          defaultAuthorizationPolicy: {
            allowedApplications: empty(entraAllowedClientApplications) ? [] : union(entraAllowedClientApplications, [entraClientId])
          }
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

// Every setting the handler and the host read (docs/architecture.md, local.settings.json),
// in their Azure form: storage connections by identity, database URLs as Key Vault references.
// Flex Consumption takes the runtime from functionAppConfig, so no FUNCTIONS_* settings.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: {
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: appIdentity.properties.clientId
    SyncStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
    SyncStorage__tableServiceUri: storage.properties.primaryEndpoints.table
    SyncStorage__credential: 'managedidentity'
    SyncStorage__clientId: appIdentity.properties.clientId
    PRIMARY_DATABASE_URL: '@Microsoft.KeyVault(SecretUri=${primarySecretUri})'
    FALLBACK_DATABASE_URL: '@Microsoft.KeyVault(SecretUri=${fallbackSecretUri})'
    PRIMARY_DB_MAX_CONNS: string(primaryMaxConns)
    FALLBACK_DB_MAX_CONNS: string(fallbackMaxConns)
    NightlySyncSchedule: nightlySyncSchedule
    NightlySyncMode: nightlySyncMode
    OutboxRelaySchedule: outboxRelaySchedule
    // Retention, after the nightly runs (README "Retention"): runs kept 30 days, tombstones forever.
    RUN_RETENTION: '30d'
    TOMBSTONE_RETENTION: ''
    DB_CONNECT_TIMEOUT: dbConnectTimeout
    DB_QUERY_TIMEOUT: dbQueryTimeout
    BREAKER_COOLDOWN: breakerCooldown
    OUTBOX_RESEND_AFTER: outboxResendAfter
    SYNC_RESULT_PARTITIONS: string(syncResultPartitions)
    PUBLISH_WORKERS: publishWorkers
    PUBLISH_BUFFER: publishBuffer
    PUBLISH_DRAIN_TIMEOUT: publishDrainTimeout
    LOG_LEVEL: logLevel
    // Thresholds of the operator events the alerts select (infra/alerts.bicep, docs/deploy.md).
    OUTBOX_STALE_AFTER: '5m'
    RELAY_BACKLOG_ITEMS: '1000'
    DB_SLOW_CALL: '1s'
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${appIdentity.properties.clientId};Authorization=AAD'
  }
  // The host and the Key Vault references need their roles from the first start.
  dependsOn: [
    appBlobDataOwner
    appQueueDataContributor
    appTableDataContributor
    appMetricsPublisher
    appKeyVaultSecretsUser
    primarySecret
    fallbackSecret
    deploymentContainer
    queues
    tables
  ]
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output storageAccountName string = storage.name
output keyVaultName string = keyVault.name
output identityName string = appIdentity.name
output identityClientId string = appIdentity.properties.clientId
output identityPrincipalId string = appIdentity.properties.principalId
output applicationInsightsName string = appInsights.name
output logAnalyticsWorkspaceName string = logAnalytics.name
