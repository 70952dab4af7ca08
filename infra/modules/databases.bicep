// The two databases, created only when main.bicep's createDatabases is true:
// Azure SQL Database (primary) with Entra-only authentication (the app signs in with its identity);
// Azure Database for PostgreSQL Flexible Server (fallback) with Entra authentication for people
// and a password login for the app (pgx takes a static URL; the URL lives in Key Vault only).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Suffix that makes the names unique.')
param resourceToken string

@description('Object id of the Entra admin of both servers.')
param principalId string

@description('Sign-in name (UPN) or display name of principalId.')
param principalName string

@description('Kind of principalId: User, Group or ServicePrincipal.')
param principalType string

@description('Application (client) id of principalId when it is a service principal: the sid Azure SQL wants for an application. Empty for a user or group.')
param principalClientId string = ''

@description('true once the Azure SQL server exists: its properties.administrators is sent at creation only (see sqlServer).')
param sqlServerExists bool = false

@description('Administrator login of the PostgreSQL server.')
param postgresAdminLogin string

@secure()
@description('Password of postgresAdminLogin.')
param postgresAdminPassword string

@description('A public IP address let through both firewalls (migrations from your machine). Empty: none.')
param clientIpAddress string

@description('Name of the database on both servers.')
param databaseName string = 'dualsync'

// The server is created Entra-only: with Entra-only off (the default) Azure SQL requires a server
// admin login and password at creation, and this template has neither. properties.administrators
// with azureADOnlyAuthentication: true is the documented way to create such a server
// (https://learn.microsoft.com/azure/azure-sql/database/authentication-azure-ad-only-authentication-create-server;
// azure-quickstart-templates quickstarts/microsoft.sql/sql-logical-server-aad-only-auth).
// Sending properties.administrators again to an existing server has been reported to fail
// (AadOnlyAuthenticationIsEnabled: github.com/Azure/bicep/issues/6858; "Invalid value given for
// parameter AzureADOnlyAuthentication": github.com/Azure/bicep-types-az/issues/2320), so it is sent
// on the first provisioning only (sqlServerExists false) and null afterwards, which ARM leaves out of
// the request. The two child resources below hold the same admin and Entra-only setting and apply
// on every provisioning, so a changed admin is still applied and Entra-only can never drift off.
resource sqlServer 'Microsoft.Sql/servers@2021-11-01' = {
  name: 'sql-${resourceToken}'
  location: location
  tags: tags
  properties: {
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    administrators: sqlServerExists ? null : {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: principalName
      sid: sqlAdminSid
      principalType: sqlPrincipalType
      tenantId: tenant().tenantId
    }
  }
}

var sqlPrincipalType = principalType == 'ServicePrincipal' ? 'Application' : principalType

// An application (service principal) is named by its application (client) id, not its object id:
// "Object Id for User or Group, Client Id for Applications" (Azure CLI, az sql server create
// --external-admin-sid). A pipeline's object id would create a server nobody can sign in to as admin.
var sqlAdminSid = sqlPrincipalType != 'Application'
  ? principalId
  : (empty(principalClientId)
      ? fail('A service principal as the Azure SQL Entra admin needs its application (client) id: set AZURE_PRINCIPAL_CLIENT_ID (docs/deploy.md).')
      : principalClientId)

resource sqlEntraAdmin 'Microsoft.Sql/servers/administrators@2021-11-01' = {
  parent: sqlServer
  name: 'ActiveDirectory'
  properties: {
    administratorType: 'ActiveDirectory'
    login: principalName
    sid: sqlAdminSid
    tenantId: tenant().tenantId
  }
}

resource sqlEntraOnly 'Microsoft.Sql/servers/azureADOnlyAuthentications@2021-11-01' = {
  parent: sqlServer
  name: 'Default'
  properties: {
    azureADOnlyAuthentication: true
  }
  dependsOn: [
    sqlEntraAdmin
  ]
}

// Basic (5 DTU, 2 GB): a flat few dollars a month. A serverless database would not save money
// here: OutboxRelay reads the primary every 10 s, so it would never auto-pause.
resource sqlDatabase 'Microsoft.Sql/servers/databases@2021-11-01' = {
  parent: sqlServer
  name: databaseName
  location: location
  tags: tags
  sku: {
    name: 'Basic'
    tier: 'Basic'
    capacity: 5
  }
  properties: {
    maxSizeBytes: 2147483648
    zoneRedundant: false
    requestedBackupStorageRedundancy: 'Local'
  }
}

// The Flex Consumption app has no fixed outbound address without a virtual network:
// 0.0.0.0 is the documented rule for "Azure services".
resource sqlAllowAzure 'Microsoft.Sql/servers/firewallRules@2021-11-01' = {
  parent: sqlServer
  name: 'AllowAllWindowsAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource sqlAllowClient 'Microsoft.Sql/servers/firewallRules@2021-11-01' = if (!empty(clientIpAddress)) {
  parent: sqlServer
  name: 'AllowClientIp'
  properties: {
    startIpAddress: clientIpAddress
    endIpAddress: clientIpAddress
  }
}

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: 'psql-${resourceToken}'
  location: location
  tags: tags
  sku: {
    name: 'Standard_B1ms'
    tier: 'Burstable'
  }
  properties: {
    version: '16'
    administratorLogin: postgresAdminLogin
    // Never an empty password: scripts/preprovision.sh stops azd before this, and fail() stops a
    // plain `az deployment` here.
    administratorLoginPassword: empty(postgresAdminPassword)
      ? fail('POSTGRES_ADMIN_PASSWORD is empty; set it (docs/deploy.md) and provision again.')
      : postgresAdminPassword
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Enabled'
      tenantId: tenant().tenantId
    }
    storage: {
      storageSizeGB: 32
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

// The server accepts one change at a time: the children below are chained with dependsOn.
resource postgresDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: postgres
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

resource postgresAllowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: postgres
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
  dependsOn: [
    postgresDatabase
  ]
}

resource postgresAllowClient 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (!empty(clientIpAddress)) {
  parent: postgres
  name: 'AllowClientIp'
  properties: {
    startIpAddress: clientIpAddress
    endIpAddress: clientIpAddress
  }
  dependsOn: [
    postgresAllowAzure
  ]
}

resource postgresEntraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: postgres
  name: principalId
  properties: {
    principalName: principalName
    principalType: principalType
    tenantId: tenant().tenantId
  }
  dependsOn: [
    postgresAllowAzure
    postgresAllowClient
  ]
}

output sqlServerName string = sqlServer.name
output sqlServerFqdn string = sqlServer.properties.fullyQualifiedDomainName
output sqlDatabaseName string = sqlDatabase.name
output postgresServerName string = postgres.name
output postgresFqdn string = postgres.properties.fullyQualifiedDomainName
output postgresDatabaseName string = postgresDatabase.name
