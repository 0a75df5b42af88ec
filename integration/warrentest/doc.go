// Package warrentest is a test kit for services built on warren, in the
// spirit of net/http/httptest: it finds or starts a real RabbitMQ broker for
// a test, injects the faults warren recovers from, and checks that no
// message the broker confirmed was lost. It is what warren's own
// integration tests use (packages broker, faultproxy and testkit), made a
// documented API.
//
// A test binary shares one broker between its tests:
//
//	func TestMain(m *testing.M) { warrentest.Main(m) }
//
//	func TestOrdersSurviveAKill(t *testing.T) {
//		s := warrentest.Broker(t)
//		url, user := s.User(t)            // the service's own user
//		// start the service on url, then:
//		s.Faults.CloseUserConnections(ctx, user)
//	}
//
// Broker finds a broker the way warren's tests do, in this order: the
// AMQP_URL environment variable (faults through rabbitmqctl when
// RABBITMQ_NODENAME is set, or the management API when AMQP_MGMT_URL is); a
// Docker engine, through testcontainers-go (image $WARREN_DOCKER_IMAGE, else
// rabbitmq:3.13-management; set TESTCONTAINERS_RYUK_DISABLED=true where the
// Ryuk image cannot be pulled); a local rabbitmq-server, from which it
// starts a private node on loopback ports of its own. WARREN_RABBITMQ=3.10
// or 4.0 pins the release of a local node. Everything it starts is stopped
// and removed at the end: by Main after the binary's tests, or at the test's
// cleanup when Broker started a broker for one test.
//
// Faults (broker.Faults) kills connections by connection name or by user,
// raises and clears the memory alarm, and stops and starts the RabbitMQ
// application; a fault the broker cannot take (Restart of a broker named by
// AMQP_URL, say) returns an error wrapping ErrUnsupported. Proxy puts a
// fault proxy between one client and the broker, to partition that one
// connection (Blackhole) without touching the others. A Ledger records
// which messages the broker confirmed and which a Tap received, and
// AssertNoLoss fails the test when a confirmed message never arrived.
package warrentest
