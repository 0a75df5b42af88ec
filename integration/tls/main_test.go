// Package tls_test runs warren against a real RabbitMQ over TLS: a private
// node with a TLS listener whose CA and certificates the test makes itself.
// Only this package starts a TLS node, so no other package pays for it.
package tls_test

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

// pki is what TestMain generated: the broker's CA, a second CA nobody
// trusts, and a directory holding their files.
var pki struct {
	ca, stranger *testkit.CA
}

func TestMain(m *testing.M) {
	os.Exit(runTLS(m))
}

func runTLS(m *testing.M) int {
	dir, err := os.MkdirTemp("", "warren-tls-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	files, err := makePKI(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: making the test PKI:", err)
		return 1
	}
	return broker.RunWith(m, broker.Options{TLS: files})
}

// makePKI makes the CAs and the broker's certificate, valid for localhost
// and 127.0.0.1.
func makePKI(dir string) (*broker.TLSFiles, error) {
	var err error
	if pki.ca, err = testkit.NewCA(dir, "warren-test"); err != nil {
		return nil, err
	}
	if pki.stranger, err = testkit.NewCA(dir, "stranger"); err != nil {
		return nil, err
	}
	server, err := pki.ca.IssueServer("broker", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &broker.TLSFiles{CACert: pki.ca.CertFile, Cert: server.CertFile, Key: server.KeyFile, External: true}, nil
}
