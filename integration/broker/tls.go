package broker

import (
	"fmt"
	"strings"
)

// TLSFiles asks FindWith for a TLS listener next to the plain one, with
// these PEM files, which the test generates itself (nothing is fetched).
// Only a node started from a local rabbitmq-server can have one; FindWith
// fails with ErrUnsupported on the other paths.
type TLSFiles struct {
	// CACert verifies client certificates. Required.
	CACert string
	// Cert and Key are the broker's certificate and private key. Required.
	Cert, Key string
	// External enables the rabbitmq_auth_mechanism_ssl plugin and offers
	// the EXTERNAL mechanism, which logs a client in as the common name of
	// its certificate. A client without a certificate may still connect and
	// log in with a password. Defaults to false.
	External bool
}

// externalPlugin is the plugin that offers SASL EXTERNAL; the Debian package
// of RabbitMQ 3.10 ships it.
const externalPlugin = "rabbitmq_auth_mechanism_ssl"

// plugins returns the node's enabled_plugins list.
func (n *localNode) plugins() string {
	var names []string
	if n.mgmt {
		names = append(names, "rabbitmq_management")
	}
	if n.tls != nil && n.tls.External {
		names = append(names, externalPlugin)
	}
	return "[" + strings.Join(names, ",") + "]."
}

// tlsConfig renders the rabbitmq.conf lines of the TLS listener, or "".
// verify_peer with fail_if_no_peer_cert false asks for a client certificate
// and checks one that comes, but lets password clients in too.
func (n *localNode) tlsConfig() string {
	if n.tls == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listeners.ssl.1 = 127.0.0.1:%d\n", n.tlsPort)
	fmt.Fprintf(&b, "ssl_options.cacertfile = %s\n", n.tls.CACert)
	fmt.Fprintf(&b, "ssl_options.certfile = %s\n", n.tls.Cert)
	fmt.Fprintf(&b, "ssl_options.keyfile = %s\n", n.tls.Key)
	b.WriteString("ssl_options.verify = verify_peer\n")
	b.WriteString("ssl_options.fail_if_no_peer_cert = false\n")
	if n.tls.External {
		b.WriteString("auth_mechanisms.1 = PLAIN\nauth_mechanisms.2 = AMQPLAIN\nauth_mechanisms.3 = EXTERNAL\n")
		b.WriteString("ssl_cert_login_from = common_name\n")
	}
	return b.String()
}

// tlsURL is the amqps:// URL of the TLS listener, or "".
func (n *localNode) tlsURL() string {
	if n.tls == nil {
		return ""
	}
	return fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d/", n.tlsPort)
}
