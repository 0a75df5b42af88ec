package broker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fakeRunner answers rabbitmqctl commands from a function and records them.
type fakeRunner struct {
	mu     sync.Mutex
	calls  [][]string
	answer func(args []string) (stdout, stderr string, err error)
}

func (f *fakeRunner) String() string { return "fake rabbitmqctl" }

func (f *fakeRunner) run(_ context.Context, args []string) (string, string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, append([]string(nil), args...))
	f.mu.Unlock()
	if f.answer == nil {
		return "", "", nil
	}
	return f.answer(args)
}

func (f *fakeRunner) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, strings.Join(c, " "))
	}
	return out
}

func TestCtlErrorScrubsSecret(t *testing.T) {
	r := &fakeRunner{answer: func(args []string) (string, string, error) {
		return "", "Error (argument validation): bad\nArguments given:\n\tadd_user bob " + args[2], errors.New("exit status 64")
	}}
	err := newCtl(r).addUser(context.Background(), "bob", "s3cr3t-pw")
	if err == nil {
		t.Fatal("addUser succeeded, want the runner's error")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "add_user") || !strings.Contains(err.Error(), "exit status 64") {
		t.Errorf("error %q should name the command and its status", err)
	}
}

func TestCtlCommands(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func(c *ctl) error
		want []string
	}{
		{"close user connections", func(c *ctl) error { return c.closeUserConnections(ctx, "bob") },
			[]string{"close_all_user_connections bob " + forcedCloseReason}},
		{"close all", func(c *ctl) error { return c.closeAllConnections(ctx) },
			[]string{"close_all_connections --global " + forcedCloseReason}},
		{"start app waits for startup", func(c *ctl) error { return c.startApp(ctx) },
			[]string{"start_app", "await_startup"}},
		{"permissions", func(c *ctl) error { return c.setPermissions(ctx, "/", "bob") },
			[]string{"set_permissions -p / bob .* .* .*"}},
		{"vhost", func(c *ctl) error { return c.addVhost(ctx, "v 1") }, []string{"add_vhost v 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{}
			if err := tt.call(newCtl(r)); err != nil {
				t.Fatal(err)
			}
			if got := r.commands(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("commands = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCtlCloseConnectionCount(t *testing.T) {
	tests := []struct {
		out     string
		want    int
		wantErr bool
	}{
		{"2", 2, false},
		{"0", 0, false},
		{"{badrpc,nodedown}", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.out, func(t *testing.T) {
			r := &fakeRunner{answer: func(args []string) (string, string, error) {
				if args[0] != "eval" || !strings.Contains(args[1], erlBinary("my conn")) {
					return "", "", fmt.Errorf("unexpected command %q", args)
				}
				return tt.out + "\n", "", nil
			}}
			n, err := newCtl(r).closeConnection(context.Background(), "my conn")
			if (err != nil) != tt.wantErr || n != tt.want {
				t.Errorf("closeConnection = %d, %v; want %d, error %v", n, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSetMemoryAlarmRestoresWatermark(t *testing.T) {
	tests := []struct {
		name    string
		current string
		restore string
	}{
		{"relative", "0.4", "set_vm_memory_high_watermark 0.4"},
		{"custom relative", "0.6", "set_vm_memory_high_watermark 0.6"},
		{"absolute", "{absolute,1073741824}", "set_vm_memory_high_watermark absolute 1073741824"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{answer: func(args []string) (string, string, error) {
				if args[0] == "eval" {
					return tt.current, "", nil
				}
				return "", "", nil
			}}
			c := newCtl(r)
			ctx := context.Background()
			// Raising twice must not save the alarm's own 0 as the value to restore.
			for _, on := range []bool{true, true, false} {
				if err := c.setMemoryAlarm(ctx, on); err != nil {
					t.Fatal(err)
				}
			}
			want := []string{
				"eval vm_memory_monitor:get_vm_memory_high_watermark().",
				"set_vm_memory_high_watermark 0",
				"set_vm_memory_high_watermark 0",
				tt.restore,
			}
			if got := r.commands(); !reflect.DeepEqual(got, want) {
				t.Errorf("commands = %q, want %q", got, want)
			}
		})
	}
}

func TestClearMemoryAlarmWithoutRaise(t *testing.T) {
	tests := []struct {
		current string
		want    []string
	}{
		{"0.4", []string{"eval vm_memory_monitor:get_vm_memory_high_watermark()."}},
		{"0.0", []string{"eval vm_memory_monitor:get_vm_memory_high_watermark().", "set_vm_memory_high_watermark 0.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.current, func(t *testing.T) {
			r := &fakeRunner{answer: func(args []string) (string, string, error) {
				if args[0] == "eval" {
					return tt.current, "", nil
				}
				return "", "", nil
			}}
			if err := newCtl(r).setMemoryAlarm(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			if got := r.commands(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("commands = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWatermarkArgs(t *testing.T) {
	tests := []struct {
		term    string
		want    []string
		wantErr bool
	}{
		{"0.4", []string{"0.4"}, false},
		{" 0.4\n", []string{"0.4"}, false},
		{"{absolute,1024}", []string{"absolute", "1024"}, false},
		{"{absolute,\"1GB\"}", nil, true},
		{"{badrpc,nodedown}", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.term, func(t *testing.T) {
			got, err := watermarkArgs(tt.term)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("watermarkArgs(%q) = %q, %v; want %q, error %v", tt.term, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCtlConnections(t *testing.T) {
	// Output of rabbitmqctl 3.10 list_connections --formatter json.
	const out = `[
{"user":"guest","vhost":"/","peer_port":37836,"state":"running","client_properties":[["connection_name","longstr","my conn"],["capabilities","table",[["publisher_confirms","bool",true]]]]}
,{"user":"bob","vhost":"v1","peer_port":37846,"state":"blocked","client_properties":[["product","longstr","x"]]}
]`
	got, err := parseCtlConnections(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Connection{
		{Name: "my conn", User: "guest", Vhost: "/", PeerPort: 37836, State: "running"},
		{Name: "", User: "bob", Vhost: "v1", PeerPort: 37846, State: "blocked"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseCtlConnections = %+v, want %+v", got, want)
	}
	if got, err := parseCtlConnections("[\n]"); err != nil || len(got) != 0 {
		t.Errorf("empty list = %v, %v", got, err)
	}
	if _, err := parseCtlConnections("Error: nodedown"); err == nil {
		t.Error("garbage parsed without error")
	}
}

func TestErlBinary(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "list_to_binary([])"},
		{`a"b`, "list_to_binary([97,34,98])"},
		{"é", "list_to_binary([195,169])"},
	}
	for _, tt := range tests {
		if got := erlBinary(tt.in); got != tt.want {
			t.Errorf("erlBinary(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	var b cappedBuffer
	chunk := strings.Repeat("x", maxCtlOutput/2+1)
	for range 3 {
		if n, err := b.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if b.buf.Len() != maxCtlOutput {
		t.Errorf("kept %d bytes, want %d", b.buf.Len(), maxCtlOutput)
	}
	if want := 3*len(chunk) - maxCtlOutput; b.dropped != want {
		t.Errorf("dropped %d, want %d", b.dropped, want)
	}
}
