// Package azconn resolves an Azure Functions connection setting (such as
// SyncStorage) to storage clients, the way the Functions host reads it: a
// connection string, the UseDevelopmentStorage=true shorthand, or the
// identity-based form (<name>__queueServiceUri, <name>__tableServiceUri,
// <name>__clientId).
package azconn

import (
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/domain"
)

// azuriteKey is Azurite's public, well-known development key (local only).
const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// DevelopmentStorage is what UseDevelopmentStorage=true stands for: Azurite
// on its default ports.
const DevelopmentStorage = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + azuriteKey + ";" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

// ConnectionString returns the setting's connection string with the
// development shorthand expanded; ok is false if the setting is empty.
func ConnectionString(getenv func(string) string, name string) (string, bool) {
	cs := strings.TrimSpace(getenv(name))
	if cs == "" {
		return "", false
	}
	if isDevelopmentStorage(cs) {
		return DevelopmentStorage, true
	}
	return cs, true
}

func isDevelopmentStorage(cs string) bool {
	for _, part := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "UseDevelopmentStorage") && strings.EqualFold(strings.TrimSpace(v), "true") {
			return true
		}
	}
	return false
}

// QueueClient returns a queue service client for the connection setting
// `name`. A connection string wins; otherwise <name>__queueServiceUri with a
// managed identity (user-assigned if <name>__clientId is set).
func QueueClient(getenv func(string) string, name string) (*azqueue.ServiceClient, error) {
	return client(getenv, name, "queueServiceUri",
		func(cs string) (*azqueue.ServiceClient, error) {
			return azqueue.NewServiceClientFromConnectionString(cs, nil)
		},
		func(uri string, cred azcore.TokenCredential) (*azqueue.ServiceClient, error) {
			return azqueue.NewServiceClient(uri, cred, nil)
		})
}

// TableClient returns a table service client for the connection setting
// `name`, resolved like QueueClient but from <name>__tableServiceUri.
func TableClient(getenv func(string) string, name string) (*aztables.ServiceClient, error) {
	return client(getenv, name, "tableServiceUri",
		func(cs string) (*aztables.ServiceClient, error) {
			return aztables.NewServiceClientFromConnectionString(cs, nil)
		},
		func(uri string, cred azcore.TokenCredential) (*aztables.ServiceClient, error) {
			return aztables.NewServiceClient(uri, cred, nil)
		})
}

// client resolves the setting the way the Functions host does for one
// service: fromString for a connection string, else fromIdentity with the
// <name>__<uriKey> endpoint and a managed identity credential.
func client[C any](getenv func(string) string, name, uriKey string,
	fromString func(string) (C, error), fromIdentity func(string, azcore.TokenCredential) (C, error)) (C, error) {
	var zero C
	if cs, ok := ConnectionString(getenv, name); ok {
		c, err := fromString(cs)
		if err != nil {
			// The SDK error may quote the string, key included; do not wrap it.
			return zero, domain.Errorf(domain.KindInternal, "setting %s: invalid storage connection string", name)
		}
		return c, nil
	}
	uri := strings.TrimSpace(getenv(name + "__" + uriKey))
	if uri == "" {
		return zero, domain.Errorf(domain.KindInternal,
			"setting %s is not set (need a connection string or %s__%s)", name, name, uriKey)
	}
	var opts azidentity.ManagedIdentityCredentialOptions
	if id := strings.TrimSpace(getenv(name + "__clientId")); id != "" {
		opts.ID = azidentity.ClientID(id)
	}
	cred, err := azidentity.NewManagedIdentityCredential(&opts)
	if err != nil {
		return zero, domain.Wrap(domain.KindInternal, err, "setting "+name+": managed identity credential")
	}
	c, err := fromIdentity(uri, cred)
	if err != nil {
		return zero, domain.Wrap(domain.KindInternal, err, "setting "+name+"__"+uriKey)
	}
	return c, nil
}
