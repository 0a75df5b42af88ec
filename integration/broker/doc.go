// Package broker finds or starts a RabbitMQ broker for integration tests and
// demos, and injects faults into it.
//
// Find tries, in order: the AMQP_URL environment variable; a Docker engine
// (a rabbitmq management container through testcontainers-go, image
// Options.Image, $WARREN_DOCKER_IMAGE or rabbitmq:3.13-management), only in
// a program that imports package broker/docker, which links that path in
// (warren's tests and package warrentest do; the warren CLI does not, so it
// links neither testcontainers-go nor the Docker client); and a local
// rabbitmq-server installation, from which it starts a private node (its own
// temporary directory, Erlang cookie, loopback ports and epmd) that Close
// stops and deletes again. Faults go through rabbitmqctl when it can reach
// the node, else through the management HTTP API; a fault that is not
// available returns an error wrapping ErrUnsupported.
//
// WARREN_RABBITMQ (EnvVersion) or Options.Version pins the release of a
// local node instead: "3.10" is the host's rabbitmq-server, "4.0" is
// RabbitMQ 4.0.5 in the Debian trixie root scripts/ensure-rabbitmq4.sh
// builds, whose programs run through chroot in a mount namespace of their
// own (chroot.go). Broker.Version and the log line name the release.
//
// A test binary shares one broker between its tests:
//
//	func TestMain(m *testing.M) { broker.Main(m) }
//
//	func TestForcedClose(t *testing.T) {
//		b := broker.Shared(t)
//		conn, err := amqp.DialConfig(b.URL, amqp.Config{
//			Properties: amqp.Table{"connection_name": t.Name()},
//		})
//		// ...
//		err = b.Faults.CloseConnection(ctx, t.Name()) // 320 CONNECTION_FORCED
//	}
//
// Failover tests need several nodes: StartCluster starts a cluster (private
// local nodes sharing one epmd and Erlang cookie, joined with
// rabbitmqctl join_cluster, or containers on one Docker network) whose nodes
// Cluster.StopNode, StartNode and KillNode take down and bring back. A test
// binary shares one cluster the way it shares a broker:
//
//	func TestMain(m *testing.M) { broker.ClusterMain(m, 3) }
//
//	func TestFailover(t *testing.T) {
//		c := broker.SharedCluster(t)
//		// conn.Options{URLs: c.URLs()}, then c.StopNode(ctx, i) ...
//	}
//
// Integration tests never skip: Main exits with status 1, saying how to get
// a broker, when it finds none.
package broker
