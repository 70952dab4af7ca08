#!/bin/sh
# Checks the provisioning settings before anything in Azure changes: azd runs it as the
# preprovision hook (azure.yaml); with the Azure CLI alone, run it yourself before
# `az deployment sub create` (docs/deploy.md). It reads the same variables as
# infra/main.bicepparam, prints what is wrong (never a value) and exits 1 if anything is.
# infra/main.bicep stops on the same mistakes with fail(), later; this says so before a deployment starts.
set -u

problems=0
fail() {
	echo "preprovision: $*" >&2
	problems=$((problems + 1))
}

# Azure Database for PostgreSQL flexible server: 8 to 128 characters from three of: upper case,
# lower case, digits, other characters
# (https://learn.microsoft.com/azure/postgresql/flexible-server/quickstart-create-server).
check_password() {
	name=$1
	eval "value=\${$name:-}"
	if [ -z "$value" ]; then
		fail "$name is empty; set it (azd env set $name ...) before provisioning with CREATE_DATABASES=true"
		return
	fi
	len=${#value}
	if [ "$len" -lt 8 ] || [ "$len" -gt 128 ]; then
		fail "$name must be 8 to 128 characters long (it has $len)"
	fi
	kinds=0
	case $value in *[ABCDEFGHIJKLMNOPQRSTUVWXYZ]*) kinds=$((kinds + 1)) ;; esac
	case $value in *[abcdefghijklmnopqrstuvwxyz]*) kinds=$((kinds + 1)) ;; esac
	case $value in *[0123456789]*) kinds=$((kinds + 1)) ;; esac
	case $value in *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789]*) kinds=$((kinds + 1)) ;; esac
	if [ "$kinds" -lt 3 ]; then
		fail "$name must mix three of: upper case, lower case, digits, other characters"
	fi
}

case ${CREATE_DATABASES:-false} in
true | True | TRUE)
	[ -n "${AZURE_PRINCIPAL_NAME:-}" ] || fail "AZURE_PRINCIPAL_NAME is empty: the Entra admin login of both database servers (docs/deploy.md)"
	check_password POSTGRES_ADMIN_PASSWORD
	check_password POSTGRES_APP_PASSWORD
	if [ "${AZURE_PRINCIPAL_TYPE:-}" = ServicePrincipal ] && [ -z "${AZURE_PRINCIPAL_CLIENT_ID:-}" ]; then
		fail "AZURE_PRINCIPAL_CLIENT_ID is empty: a service principal as the Azure SQL admin is named by its application (client) id"
	fi
	;;
false | False | FALSE) ;;
*) fail "CREATE_DATABASES must be true or false" ;;
esac

# A URL of your own: a PostgreSQL URL with an empty password, or one that does not verify the
# server's certificate, is refused before it can replace the Key Vault secret.
for name in AZURE_PRIMARY_DATABASE_URL AZURE_FALLBACK_DATABASE_URL; do
	eval "value=\${$name:-}"
	case $value in
	postgres://* | postgresql://*)
		case $value in
		*://*:@*) fail "$name has an empty password" ;;
		esac
		case $value in
		*sslmode=verify-full*) ;;
		*) fail "$name must say sslmode=verify-full (with sslrootcert=system for the system's root CAs), so the app checks whom it talks to" ;;
		esac
		;;
	esac
done

if [ "$problems" -gt 0 ]; then
	echo "preprovision: $problems problem(s); nothing was provisioned" >&2
	exit 1
fi
echo "preprovision: settings look complete"
