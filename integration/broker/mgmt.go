package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// mgmtRequestTimeout bounds one management API request when ctx has no
// earlier deadline.
const mgmtRequestTimeout = 30 * time.Second

// maxMgmtBody bounds how much of a management API response is read.
const maxMgmtBody = 16 << 20

// mgmtClient injects faults through the RabbitMQ management HTTP API. The
// API lists connections from statistics the broker emits every
// collect_statistics_interval (5 s by default), so a connection opened just
// now may not be listed, or closable by name, yet.
type mgmtClient struct {
	base       string // scheme://host:port with no credentials or trailing slash
	user, pass string
	hc         *http.Client
	transport  *http.Transport
}

// newMgmtClient parses a management URL such as http://guest:guest@host:15672/.
// Credentials missing from it are taken from fallbackUser and fallbackPass.
func newMgmtClient(rawURL, fallbackUser, fallbackPass string) (*mgmtClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("broker: management URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("broker: management URL %s: want http(s)://host:port", redact(rawURL))
	}
	user, pass := fallbackUser, fallbackPass
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	// A transport of our own, so closeIdle leaves no keep-alive goroutine
	// behind and other users of http.DefaultTransport are not affected.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &mgmtClient{
		base:      u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"),
		user:      user,
		pass:      pass,
		hc:        &http.Client{Transport: tr, Timeout: mgmtRequestTimeout},
		transport: tr,
	}, nil
}

func (c *mgmtClient) closeIdle() { c.transport.CloseIdleConnections() }

// do sends one request; path segments must already be escaped. A non-2xx
// status is an error carrying the start of the body.
func (c *mgmtClient) do(ctx context.Context, method, path string, body any, out any, header http.Header) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("broker: management API %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("broker: management API %s %s: %w", method, path, err)
	}
	req.SetBasicAuth(c.user, c.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("broker: management API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMgmtBody))
	if err != nil {
		return fmt.Errorf("broker: management API %s %s: reading body: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(data))
		if len(msg) > maxErrorOutput {
			msg = msg[:maxErrorOutput] + "..."
		}
		return fmt.Errorf("broker: management API %s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("broker: management API %s %s: decoding: %w", method, path, err)
		}
	}
	return nil
}

// mgmtConnection is one element of GET /api/connections.
type mgmtConnection struct {
	Name             string         `json:"name"` // the broker's name, "peer -> local"
	User             string         `json:"user"`
	Vhost            string         `json:"vhost"`
	PeerPort         int            `json:"peer_port"`
	State            string         `json:"state"`
	ClientProperties map[string]any `json:"client_properties"`
}

func (m mgmtConnection) clientName() string {
	s, _ := m.ClientProperties["connection_name"].(string)
	return s
}

func (c *mgmtClient) connections(ctx context.Context) ([]mgmtConnection, error) {
	var conns []mgmtConnection
	err := c.do(ctx, http.MethodGet, "/api/connections", nil, &conns, nil)
	return conns, err
}

func (c *mgmtClient) listConnections(ctx context.Context) ([]Connection, error) {
	conns, err := c.connections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Connection, 0, len(conns))
	for _, m := range conns {
		out = append(out, Connection{Name: m.clientName(), User: m.User, Vhost: m.Vhost, PeerPort: m.PeerPort, State: m.State})
	}
	return out, nil
}

// deleteConnection closes one connection by the broker's name for it; the
// broker sends 320 CONNECTION_FORCED with the X-Reason header as its text.
func (c *mgmtClient) deleteConnection(ctx context.Context, brokerName string) error {
	h := http.Header{"X-Reason": {forcedCloseReason}}
	return c.do(ctx, http.MethodDelete, "/api/connections/"+url.PathEscape(brokerName), nil, nil, h)
}

func (c *mgmtClient) closeMatching(ctx context.Context, match func(mgmtConnection) bool) (int, error) {
	conns, err := c.connections(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range conns {
		if !match(m) {
			continue
		}
		if err := c.deleteConnection(ctx, m.Name); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (c *mgmtClient) closeConnection(ctx context.Context, name string) (int, error) {
	return c.closeMatching(ctx, func(m mgmtConnection) bool { return m.clientName() == name })
}

func (c *mgmtClient) closeUserConnections(ctx context.Context, user string) error {
	h := http.Header{"X-Reason": {forcedCloseReason}}
	return c.do(ctx, http.MethodDelete, "/api/connections/username/"+url.PathEscape(user), nil, nil, h)
}

func (c *mgmtClient) closeAllConnections(ctx context.Context) error {
	_, err := c.closeMatching(ctx, func(mgmtConnection) bool { return true })
	return err
}

func (c *mgmtClient) addUser(ctx context.Context, user, pass string) error {
	body := map[string]string{"password": pass, "tags": ""}
	return c.do(ctx, http.MethodPut, "/api/users/"+url.PathEscape(user), body, nil, nil)
}

func (c *mgmtClient) deleteUser(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(user), nil, nil, nil)
}

func (c *mgmtClient) addVhost(ctx context.Context, vhost string) error {
	return c.do(ctx, http.MethodPut, "/api/vhosts/"+url.PathEscape(vhost), nil, nil, nil)
}

func (c *mgmtClient) deleteVhost(ctx context.Context, vhost string) error {
	return c.do(ctx, http.MethodDelete, "/api/vhosts/"+url.PathEscape(vhost), nil, nil, nil)
}

func (c *mgmtClient) setPermissions(ctx context.Context, vhost, user string) error {
	body := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	return c.do(ctx, http.MethodPut, "/api/permissions/"+url.PathEscape(vhost)+"/"+url.PathEscape(user), body, nil, nil)
}
