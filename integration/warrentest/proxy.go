package warrentest

import (
	"testing"

	"github.com/warrenmq/warren/integration/faultproxy"
)

// Proxy is a fault proxy on 127.0.0.1 in front of the broker: a client
// that dials URL goes through it, so the test can partition that client
// alone. Blackhole holds every byte both ways on the connections it carries
// (the sockets stay open, as in a network partition), Heal lets them flow
// again, Reset closes them with a TCP reset, Refuse(true) refuses new
// connections, and SetLatency delays every chunk; see faultproxy.Proxy.
type Proxy struct {
	*faultproxy.Proxy
	// URL is the URL Proxy was made for, with the proxy's address.
	URL string
}

// Proxy starts a fault proxy to the broker for rawURL (the broker's URL, or
// one from User) and closes it at the test's cleanup.
func (s *Server) Proxy(t testing.TB, rawURL string) *Proxy {
	t.Helper()
	p, err := faultproxy.New(s.Addr())
	if err != nil {
		t.Fatalf("warrentest: starting a fault proxy: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u, err := withHost(rawURL, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return &Proxy{Proxy: p, URL: u}
}
