// Package infra holds the Azure infrastructure of dualsync (main.bicep, modules/, main.bicepparam)
// and the Go tests that check it against the app: settings, queues, tables, roles, no keys or
// passwords, and the deploy package's layout. It has no Go code of its own.
package infra
