package infra

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"dualsync/internal/postgres"
	"dualsync/internal/store"
)

// bicepFallbackURL returns the fallback URL modules/app.bicep builds for created databases, with
// its interpolations filled in for a server at hostPort.
func bicepFallbackURL(t *testing.T, hostPort string) string {
	t.Helper()
	app := stripComments(string(readFile(t, "modules/app.bicep")))
	m := regexp.MustCompile(`(?m)^var fallbackUrl = createDatabases \? '([^']+)'`).FindStringSubmatch(app)
	if m == nil {
		t.Fatal("modules/app.bicep: no var fallbackUrl = createDatabases ? '...'")
	}
	u := strings.NewReplacer(
		"${postgresAppLogin}", "dualsync_app",
		"${uriComponent(postgresAppPassword)}", "pw",
		"${postgresFqdn}:5432", hostPort,
		"${postgresDatabaseName}", "dualsync",
	).Replace(m[1])
	if strings.Contains(u, "${") {
		t.Fatalf("unexpected interpolation left in %q", u)
	}
	return u
}

// TestFallbackURLVerifiesServer: the URL the Bicep writes to Key Vault makes pgx check the
// server's certificate chain and host name (sslmode=verify-full), with no plain-text fallback.
// Against a TLS server whose certificate the system does not trust, the real adapter refuses
// the handshake; with that certificate's CA as sslrootcert it completes it; a certificate for
// another host name is refused even from a trusted CA. sslmode=require, as before, would have
// accepted the untrusted server.
func TestFallbackURLVerifiesServer(t *testing.T) {
	ca, caKey, caPEM := newCA(t)
	good := leafCert(t, ca, caKey, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} })
	otherHost := leafCert(t, ca, caKey, func(c *x509.Certificate) { c.DNSNames = []string{"psql-other.postgres.database.azure.com"} })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	probe := bicepFallbackURL(t, "127.0.0.1:5432")
	cfg, err := pgconn.ParseConfig(probe)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSConfig == nil || cfg.TLSConfig.InsecureSkipVerify || cfg.TLSConfig.ServerName != "127.0.0.1" {
		t.Fatalf("%s: TLS config does not verify the server (nil, InsecureSkipVerify or no ServerName)", redact(probe))
	}
	for _, fb := range cfg.Fallbacks {
		if fb.TLSConfig == nil {
			t.Fatalf("%s: allows a plain-text fallback", redact(probe))
		}
	}

	withRootCert := func(u, root string) string {
		q, _ := url.Parse(u)
		v := q.Query()
		v.Set("sslrootcert", root)
		q.RawQuery = v.Encode()
		return q.String()
	}
	withMode := func(u, mode string) string {
		q, _ := url.Parse(u)
		v := q.Query()
		v.Del("sslrootcert")
		v.Set("sslmode", mode)
		q.RawQuery = v.Encode()
		return q.String()
	}
	for _, tc := range []struct {
		name      string
		cert      tls.Certificate
		url       func(hostPort string) string
		handshake bool
	}{
		{"as built, untrusted server", good, func(hp string) string { return bicepFallbackURL(t, hp) }, false},
		{"trusted CA, right host", good, func(hp string) string { return withRootCert(bicepFallbackURL(t, hp), caFile) }, true},
		{"trusted CA, other host", otherHost, func(hp string) string { return withRootCert(bicepFallbackURL(t, hp), caFile) }, false},
		{"sslmode=require (before) accepts anyone", good, func(hp string) string { return withMode(bicepFallbackURL(t, hp), "require") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostPort, result := fakeTLSPostgres(t, tc.cert)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			db, err := postgres.Open(ctx, tc.url(hostPort), store.RoleFallback, postgres.Options{ConnectTimeout: 5 * time.Second, MaxConns: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Ping(ctx); err == nil {
				t.Fatal("ping succeeded against a server that speaks no PostgreSQL after TLS")
			}
			select {
			case herr := <-result:
				if (herr == nil) != tc.handshake {
					t.Fatalf("TLS handshake completed = %v (%v), want %v", herr == nil, herr, tc.handshake)
				}
			case <-ctx.Done():
				t.Fatal("the client never reached the server")
			}
		})
	}
}

// fakeTLSPostgres answers one PostgreSQL SSLRequest with 'S', runs the TLS handshake with cert,
// reports its outcome, and hangs up.
func fakeTLSPostgres(t *testing.T, cert tls.Certificate) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	result := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		var req [8]byte
		if _, err := io.ReadFull(conn, req[:]); err != nil || binary.BigEndian.Uint32(req[4:]) != 80877103 {
			result <- io.ErrUnexpectedEOF
			return
		}
		if _, err := conn.Write([]byte{'S'}); err != nil {
			result <- err
			return
		}
		srv := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
		result <- srv.Handshake()
	}()
	return ln.Addr().String(), result
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dualsync test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func leafCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	names(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func redact(u string) string {
	q, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return q.Redacted()
}
