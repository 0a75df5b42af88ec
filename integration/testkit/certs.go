package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certLifetime is how long the test certificates are valid: long enough
// for any test run, short enough that a leaked key is worth nothing.
const certLifetime = 24 * time.Hour

// CA is a certificate authority made by a test for itself: nothing is
// fetched, and no one else trusts it.
type CA struct {
	// Pool holds the CA certificate alone, for tls.Config.RootCAs.
	Pool *x509.CertPool
	// CertFile is the CA certificate as a PEM file.
	CertFile string

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

// Leaf is a certificate a CA issued, with its key.
type Leaf struct {
	// CertFile and KeyFile are the certificate and its key as PEM files.
	CertFile, KeyFile string
	// TLS is the pair for tls.Config.Certificates.
	TLS tls.Certificate
}

// NewCA makes a CA named name and writes its certificate into dir.
func NewCA(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"warren tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(certLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Pool: x509.NewCertPool(), cert: cert, key: key, dir: dir}
	ca.Pool.AddCert(cert)
	ca.CertFile = filepath.Join(dir, name+"-ca.pem")
	if err := writePEM(ca.CertFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return ca, nil
}

// IssueServer issues a server certificate for the host names and IPs, and
// writes it and its key into the CA's directory as name.pem and name-key.pem.
func (ca *CA) IssueServer(name string, hosts []string, ips []net.IP) (*Leaf, error) {
	return ca.issue(name, hosts, ips, x509.ExtKeyUsageServerAuth)
}

// IssueClient issues a client certificate whose common name is cn, the
// user name RabbitMQ's EXTERNAL mechanism logs in as.
func (ca *CA) IssueClient(cn string) (*Leaf, error) {
	return ca.issue(cn, nil, nil, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(name string, hosts []string, ips []net.IP, usage x509.ExtKeyUsage) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     hosts,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	l := &Leaf{
		CertFile: filepath.Join(ca.dir, name+".pem"),
		KeyFile:  filepath.Join(ca.dir, name+"-key.pem"),
	}
	if err := writePEM(l.CertFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	if err := writePEM(l.KeyFile, "EC PRIVATE KEY", keyDER); err != nil {
		return nil, err
	}
	if l.TLS, err = tls.LoadX509KeyPair(l.CertFile, l.KeyFile); err != nil {
		return nil, fmt.Errorf("testkit: load the pair just written: %w", err)
	}
	return l, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// writePEM writes one PEM block, readable by the broker's user only: the
// local node runs as the same user as the test.
func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}
