package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// dockerProbeTimeout bounds the Docker engine probe: a socket that exists but
// does not answer must not stall Find.
const dockerProbeTimeout = time.Second

// defaultDockerSocket is where a rootful Docker engine listens.
const defaultDockerSocket = "/var/run/docker.sock"

// errNoDockerEngine is reported (not returned by Find) when no engine answers.
var errNoDockerEngine = errors.New("no Docker engine")

// probeDocker reports whether a Docker engine answers GET /_ping at
// dockerHost (a DOCKER_HOST value; "" means the default socket), within
// dockerProbeTimeout; tlsVerify is whether DOCKER_TLS_VERIFY is set.
// testcontainers-go panics when no engine exists, so Find asks this first.
func probeDocker(ctx context.Context, dockerHost string, tlsVerify bool) error {
	network, addr, err := dockerEndpoint(dockerHost, tlsVerify)
	if err != nil {
		return err
	}
	if network == "unix" {
		if _, err := os.Stat(addr); err != nil {
			return fmt.Errorf("%w: %v", errNoDockerEngine, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, dockerProbeTimeout)
	defer cancel()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		// One request: no idle connection, and so no goroutine, left behind.
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", errNoDockerEngine, addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w at %s: /_ping answered %s %q", errNoDockerEngine, addr, resp.Status, body)
	}
	return nil
}

// dockerEndpoint turns a DOCKER_HOST value into a network and address to
// dial. TLS endpoints are not probed: testcontainers would need the client
// certificates too, and this harness does not configure them.
func dockerEndpoint(dockerHost string, tlsVerify bool) (network, addr string, err error) {
	if dockerHost == "" {
		return "unix", defaultDockerSocket, nil
	}
	u, err := url.Parse(dockerHost)
	if err != nil {
		return "", "", fmt.Errorf("%w: DOCKER_HOST: %v", errNoDockerEngine, err)
	}
	switch u.Scheme {
	case "unix":
		return "unix", u.Path, nil
	case "tcp":
		if tlsVerify {
			return "", "", fmt.Errorf("%w: DOCKER_HOST %s uses TLS, which this harness does not probe", errNoDockerEngine, dockerHost)
		}
		return "tcp", u.Host, nil
	default:
		return "", "", fmt.Errorf("%w: DOCKER_HOST scheme %q not supported (want unix:// or tcp://)", errNoDockerEngine, strings.TrimSuffix(u.Scheme, ":"))
	}
}
