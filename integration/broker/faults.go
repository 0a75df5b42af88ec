package broker

import "context"

// Faults injects failures into a broker and administers it. Every method is
// bounded by ctx. A method that cannot work on the broker Find chose returns
// an error wrapping ErrUnsupported that says which fault and why.
type Faults interface {
	// CloseConnection makes the broker close, with 320 CONNECTION_FORCED,
	// every connection whose client property connection_name equals
	// connectionName. It returns an error wrapping ErrNoConnection if none
	// matched.
	CloseConnection(ctx context.Context, connectionName string) error
	// CloseUserConnections makes the broker close every connection of user.
	CloseUserConnections(ctx context.Context, user string) error
	// CloseAllConnections makes the broker close every client connection.
	CloseAllConnections(ctx context.Context) error
	// StopApp stops the RabbitMQ application, leaving the Erlang node up:
	// connections drop and new ones are refused.
	StopApp(ctx context.Context) error
	// StartApp starts the RabbitMQ application again and returns once it
	// accepts AMQP connections.
	StartApp(ctx context.Context) error
	// Restart stops the node process and starts it again on the same ports
	// and data directory. Only nodes Find started can be restarted.
	Restart(ctx context.Context) error
	// SetMemoryAlarm raises (on) or clears the memory alarm by setting the
	// memory high watermark to 0, or back to its value before the alarm.
	SetMemoryAlarm(ctx context.Context, on bool) error
	// AddUser creates a user with no tags and no permissions.
	AddUser(ctx context.Context, user, pass string) error
	// DeleteUser deletes a user.
	DeleteUser(ctx context.Context, user string) error
	// AddVhost creates a virtual host.
	AddVhost(ctx context.Context, vhost string) error
	// DeleteVhost deletes a virtual host.
	DeleteVhost(ctx context.Context, vhost string) error
	// SetPermissions grants user full (".*") configure, write and read
	// permissions on vhost.
	SetPermissions(ctx context.Context, vhost, user string) error
	// ListConnections lists the broker's client connections.
	ListConnections(ctx context.Context) ([]Connection, error)
	// Eval evaluates an Erlang expression on the broker node
	// (rabbitmqctl eval) and returns what it printed, trimmed.
	Eval(ctx context.Context, erlangExpr string) (string, error)
}

// Connection is one client connection as the broker sees it.
type Connection struct {
	// Name is the client's connection_name property, or "" if it sent none.
	Name string
	// User is the user the connection authenticated as.
	User string
	// Vhost is the connection's virtual host.
	Vhost string
	// PeerPort is the client's TCP port.
	PeerPort int
	// State is the broker's connection state, such as "running", "blocked"
	// or "blocking".
	State string
}
