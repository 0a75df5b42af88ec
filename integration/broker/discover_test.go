package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	tests := []struct {
		name      string
		env       environment
		want      plan
		wantErr   bool
		errSubstr []string
	}{
		{
			name: "AMQP_URL alone has no faults",
			env:  environment{AMQPURL: "amqp://u:p@h/", CtlPath: "/x/rabbitmqctl"},
			want: plan{Source: SourceURL, Route: routeNone,
				NoCtl:  "set RABBITMQ_NODENAME (and the node's Erlang cookie) for rabbitmqctl faults",
				NoMgmt: "set AMQP_MGMT_URL for management API faults"},
		},
		{
			name: "AMQP_URL with node name uses rabbitmqctl",
			env:  environment{AMQPURL: "amqp://u:p@h/", NodeName: "rabbit@h", CtlPath: "/x/rabbitmqctl"},
			want: plan{Source: SourceURL, Route: routeCtl, NoMgmt: "set AMQP_MGMT_URL for management API faults"},
		},
		{
			name: "AMQP_URL with node name and management prefers rabbitmqctl",
			env:  environment{AMQPURL: "amqp://u:p@h/", NodeName: "rabbit@h", CtlPath: "/x/rabbitmqctl", MgmtURL: "http://h:15672/"},
			want: plan{Source: SourceURL, Route: routeCtl},
		},
		{
			name: "AMQP_URL with node name but no rabbitmqctl uses management",
			env:  environment{AMQPURL: "amqp://u:p@h/", NodeName: "rabbit@h", MgmtURL: "http://h:15672/"},
			want: plan{Source: SourceURL, Route: routeMgmt, NoCtl: "RABBITMQ_NODENAME is set but no rabbitmqctl was found"},
		},
		{
			name: "AMQP_URL wins over Docker and a local server",
			env:  environment{AMQPURL: "amqp://u:p@h/", MgmtURL: "http://h/", DockerProbed: true, DockerOK: true, ServerPath: "/x/rabbitmq-server"},
			want: plan{Source: SourceURL, Route: routeMgmt,
				NoCtl: "set RABBITMQ_NODENAME (and the node's Erlang cookie) for rabbitmqctl faults"},
		},
		{
			name: "Docker wins over a local server",
			env:  environment{DockerProbed: true, DockerOK: true, ServerPath: "/x/rabbitmq-server"},
			want: plan{Source: SourceDocker},
		},
		{
			name: "local server when no engine answers",
			env:  environment{DockerProbed: true, DockerWhy: "no Docker engine", ServerPath: "/x/rabbitmq-server"},
			want: plan{Source: SourceLocal},
		},
		{
			name:      "nothing available says how to get a broker",
			env:       environment{DockerProbed: true, DockerWhy: "no Docker engine: stat /var/run/docker.sock", ServerWhy: "no rabbitmq-server found"},
			wantErr:   true,
			errSubstr: []string{"AMQP_URL is not set", "stat /var/run/docker.sock", "no rabbitmq-server found", "apt-get install rabbitmq-server", "make test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := choose(tt.env)
			if tt.wantErr {
				if !errors.Is(err, ErrNoBroker) {
					t.Fatalf("choose() error = %v, want ErrNoBroker", err)
				}
				for _, s := range tt.errSubstr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("choose() error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("choose() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("choose() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
