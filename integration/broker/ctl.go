package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// forcedCloseReason is the explanation the broker sends with 320
// CONNECTION_FORCED, so a test log shows who closed the connection.
const forcedCloseReason = "warren test: forced close"

// defaultWatermark is RabbitMQ's default relative memory high watermark.
const defaultWatermark = "0.4"

// maxErrorOutput bounds how much of a failed command's output goes into its
// error.
const maxErrorOutput = 600

// ctl injects faults with rabbitmqctl through a runner, so the same commands
// serve a local node, a node named by RABBITMQ_NODENAME and a container.
type ctl struct {
	r runner
	// alarm serialises SetMemoryAlarm calls, and holds the
	// set_vm_memory_high_watermark arguments that clear the alarm (nil while
	// no alarm set by us is on). A channel, not a mutex, so waiting for it
	// is bounded by ctx.
	alarm chan []string
}

func newCtl(r runner) *ctl {
	c := &ctl{r: r, alarm: make(chan []string, 1)}
	c.alarm <- nil
	return c
}

// do runs one command and returns its trimmed output. secret, when not
// empty, is scrubbed from the error: rabbitmqctl echoes its arguments on
// some failures.
func (c *ctl) do(ctx context.Context, secret string, args ...string) (string, error) {
	out, errOut, err := c.r.run(ctx, args)
	if err == nil {
		return strings.TrimSpace(out), nil
	}
	msg := strings.TrimSpace(strings.TrimSpace(errOut) + "\n" + strings.TrimSpace(out))
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "xxxxx")
	}
	if len(msg) > maxErrorOutput {
		msg = msg[:maxErrorOutput] + "..."
	}
	return "", fmt.Errorf("broker: %s %s: %w: %s", c.r, args[0], err, msg)
}

func (c *ctl) closeConnection(ctx context.Context, name string) (int, error) {
	// One eval lists and closes in a single round trip (each rabbitmqctl run
	// costs about half a second of VM start-up), and matching on the
	// client_properties term avoids parsing the CLI's pid format.
	expr := fmt.Sprintf(`Name = %s,
Pids = [proplists:get_value(pid, I) || I <- rabbit_networking:connection_info_all([pid, client_properties]),
        lists:keyfind(<<"connection_name">>, 1, proplists:get_value(client_properties, I, [])) =:= {<<"connection_name">>, longstr, Name}],
[rabbit_networking:close_connection(P, %s) || P <- Pids],
length(Pids).`, erlBinary(name), erlString(forcedCloseReason))
	out, err := c.do(ctx, "", "eval", expr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		return 0, fmt.Errorf("broker: closing connection %q: unexpected eval output %q", name, out)
	}
	return n, nil
}

func (c *ctl) closeUserConnections(ctx context.Context, user string) error {
	_, err := c.do(ctx, "", "close_all_user_connections", user, forcedCloseReason)
	return err
}

func (c *ctl) closeAllConnections(ctx context.Context) error {
	_, err := c.do(ctx, "", "close_all_connections", "--global", forcedCloseReason)
	return err
}

func (c *ctl) stopApp(ctx context.Context) error {
	_, err := c.do(ctx, "", "stop_app")
	return err
}

func (c *ctl) startApp(ctx context.Context) error {
	if _, err := c.do(ctx, "", "start_app"); err != nil {
		return err
	}
	_, err := c.do(ctx, "", "await_startup")
	return err
}

func (c *ctl) setMemoryAlarm(ctx context.Context, on bool) error {
	var restore []string
	select {
	case restore = <-c.alarm:
	case <-ctx.Done():
		return fmt.Errorf("broker: SetMemoryAlarm: %w", ctx.Err())
	}
	restore, err := c.setMemoryAlarmLocked(ctx, on, restore)
	c.alarm <- restore
	return err
}

// setMemoryAlarmLocked sets the alarm and returns the new restore arguments.
// Caller must hold c.alarm.
func (c *ctl) setMemoryAlarmLocked(ctx context.Context, on bool, restore []string) ([]string, error) {
	if on {
		if restore == nil {
			cur, err := c.do(ctx, "", "eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
			if err != nil {
				return nil, err
			}
			if restore, err = watermarkArgs(cur); err != nil {
				return nil, err
			}
		}
		if _, err := c.do(ctx, "", "set_vm_memory_high_watermark", "0"); err != nil {
			return restore, err
		}
		return restore, nil
	}
	if restore == nil {
		// No alarm of ours is on; clear a leftover one (watermark 0) but do
		// not touch a broker's own setting.
		cur, err := c.do(ctx, "", "eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
		if err != nil {
			return nil, err
		}
		if args, err := watermarkArgs(cur); err != nil || !isZeroWatermark(args) {
			return nil, err
		}
		restore = []string{defaultWatermark}
	}
	args := append([]string{"set_vm_memory_high_watermark"}, restore...)
	if _, err := c.do(ctx, "", args...); err != nil {
		return restore, err
	}
	return nil, nil
}

// watermarkArgs turns the Erlang term printed for the memory high watermark
// ("0.4" or "{absolute,1073741824}") into set_vm_memory_high_watermark
// arguments.
func watermarkArgs(term string) ([]string, error) {
	term = strings.TrimSpace(term)
	if rest, ok := strings.CutPrefix(term, "{absolute,"); ok {
		n := strings.TrimSpace(strings.TrimSuffix(rest, "}"))
		if _, err := strconv.ParseInt(n, 10, 64); err != nil || !strings.HasSuffix(rest, "}") {
			return nil, fmt.Errorf("broker: unexpected memory watermark %q", term)
		}
		return []string{"absolute", n}, nil
	}
	if _, err := strconv.ParseFloat(term, 64); err != nil {
		return nil, fmt.Errorf("broker: unexpected memory watermark %q", term)
	}
	return []string{term}, nil
}

func isZeroWatermark(args []string) bool {
	last := args[len(args)-1]
	f, err := strconv.ParseFloat(last, 64)
	return err == nil && f == 0
}

func (c *ctl) addUser(ctx context.Context, user, pass string) error {
	_, err := c.do(ctx, pass, "add_user", user, pass)
	return err
}

func (c *ctl) deleteUser(ctx context.Context, user string) error {
	_, err := c.do(ctx, "", "delete_user", user)
	return err
}

func (c *ctl) addVhost(ctx context.Context, vhost string) error {
	_, err := c.do(ctx, "", "add_vhost", vhost)
	return err
}

func (c *ctl) deleteVhost(ctx context.Context, vhost string) error {
	_, err := c.do(ctx, "", "delete_vhost", vhost)
	return err
}

func (c *ctl) setPermissions(ctx context.Context, vhost, user string) error {
	_, err := c.do(ctx, "", "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	return err
}

func (c *ctl) eval(ctx context.Context, expr string) (string, error) {
	return c.do(ctx, "", "eval", expr)
}

func (c *ctl) listConnections(ctx context.Context) ([]Connection, error) {
	out, err := c.do(ctx, "", "list_connections", "--formatter", "json",
		"user", "vhost", "peer_port", "state", "client_properties")
	if err != nil {
		return nil, err
	}
	return parseCtlConnections(out)
}

// ctlConnection is one row of `list_connections --formatter json`.
type ctlConnection struct {
	User     string `json:"user"`
	Vhost    string `json:"vhost"`
	PeerPort int    `json:"peer_port"`
	State    string `json:"state"`
	// ClientProperties is a list of [key, type, value] triples.
	ClientProperties [][]json.RawMessage `json:"client_properties"`
}

func parseCtlConnections(out string) ([]Connection, error) {
	var rows []ctlConnection
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("broker: parsing list_connections output: %w", err)
	}
	conns := make([]Connection, 0, len(rows))
	for _, r := range rows {
		conns = append(conns, Connection{
			Name:     ctlConnectionName(r.ClientProperties),
			User:     r.User,
			Vhost:    r.Vhost,
			PeerPort: r.PeerPort,
			State:    r.State,
		})
	}
	return conns, nil
}

func ctlConnectionName(props [][]json.RawMessage) string {
	for _, p := range props {
		if len(p) != 3 {
			continue
		}
		var key, name string
		if json.Unmarshal(p[0], &key) != nil || key != "connection_name" {
			continue
		}
		if json.Unmarshal(p[2], &name) == nil {
			return name
		}
	}
	return ""
}

// erlBinary renders s as an Erlang binary expression built from its bytes,
// so no name can break out of the expression.
func erlBinary(s string) string {
	return "list_to_binary(" + erlBytes(s) + ")"
}

// erlString renders s as an Erlang string (a list of bytes).
func erlString(s string) string {
	return erlBytes(s)
}

func erlBytes(s string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(s[i])))
	}
	b.WriteByte(']')
	return b.String()
}
