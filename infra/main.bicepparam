// Parameters for infra/main.bicep, read from the environment so that the same file serves
// `azd up` (azd exports its environment's values) and `az deployment sub create` (export them
// yourself; docs/deploy.md lists them). Secrets are never written here.
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME', 'dualsync')
param location = readEnvironmentVariable('AZURE_LOCATION', 'swedencentral')
param resourceGroupName = readEnvironmentVariable('AZURE_RESOURCE_GROUP', '')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param principalName = readEnvironmentVariable('AZURE_PRINCIPAL_NAME', '')
// Empty: main.bicep works it out from the deployer (azd sets no AZURE_PRINCIPAL_TYPE here).
param principalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', '')
// A pipeline's service principal as SQL admin is named by its client id (docs/deploy.md).
param principalClientId = readEnvironmentVariable('AZURE_PRINCIPAL_CLIENT_ID', '')
// Set by the previous provisioning's output (azd keeps outputs in its environment; with plain az,
// export it as docs/deploy.md shows): the SQL server's administrators are sent at creation only.
param sqlServerExists = !empty(readEnvironmentVariable('SQL_SERVER_FQDN', ''))
param createDatabases = bool(readEnvironmentVariable('CREATE_DATABASES', 'false'))
param clientIpAddress = readEnvironmentVariable('CLIENT_IP_ADDRESS', '')
// On by default; false only for a development environment recreated often (docs/deploy.md).
param keyVaultPurgeProtection = bool(readEnvironmentVariable('KEY_VAULT_PURGE_PROTECTION', 'true'))

// Distinct names from the local PRIMARY_DATABASE_URL/FALLBACK_DATABASE_URL, so a local
// development URL can never end up in Azure by accident.
param primaryDatabaseUrl = readEnvironmentVariable('AZURE_PRIMARY_DATABASE_URL', '')
param fallbackDatabaseUrl = readEnvironmentVariable('AZURE_FALLBACK_DATABASE_URL', '')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD', '')
param postgresAppPassword = readEnvironmentVariable('POSTGRES_APP_PASSWORD', '')

// Security (docs/deploy.md, "Security: keys and Entra ID"). Lists are comma-separated.
param entraClientId = readEnvironmentVariable('ENTRA_CLIENT_ID', '')
param entraTenantId = readEnvironmentVariable('ENTRA_TENANT_ID', '')
param entraAllowedAudiences = empty(readEnvironmentVariable('ENTRA_ALLOWED_AUDIENCES', '')) ? [] : split(readEnvironmentVariable('ENTRA_ALLOWED_AUDIENCES', ''), ',')
param entraAllowedClientApplications = empty(readEnvironmentVariable('ENTRA_ALLOWED_CLIENT_APPLICATIONS', '')) ? [] : split(readEnvironmentVariable('ENTRA_ALLOWED_CLIENT_APPLICATIONS', ''), ',')
param corsAllowedOrigins = empty(readEnvironmentVariable('CORS_ALLOWED_ORIGINS', '')) ? [] : split(readEnvironmentVariable('CORS_ALLOWED_ORIGINS', ''), ',')

// On-call alerts (docs/deploy.md, "On call: alerts and runbook").
param alertsEnabled = bool(readEnvironmentVariable('ALERTS_ENABLED', 'true'))
param alertEmail = readEnvironmentVariable('ALERT_EMAIL', '')
param alertWebhookUrl = readEnvironmentVariable('ALERT_WEBHOOK_URL', '')
