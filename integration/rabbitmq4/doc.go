// Package rabbitmq4 holds integration tests of RabbitMQ 4.x behaviour that
// touches warren, each run on a private RabbitMQ 4.0.5 node (the Debian
// trixie root that scripts/ensure-rabbitmq4.sh builds) whatever
// WARREN_RABBITMQ says: deprecated features the broker refuses, quorum
// queues' delivery limit, consumer_timeout, classic mirroring being gone,
// and exclusive and auto-delete queues (what stop_app and a node restart
// look like to a client is integration/smoke's TestShutdownSeenByClient, run
// on both releases). The README's "RabbitMQ versions" section quotes
// what they establish.
//
// The node denies the deprecated feature transient_nonexcl_queues, as
// RabbitMQ says a future release will by default.
package rabbitmq4
