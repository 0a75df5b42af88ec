package conn

import (
	amqp "github.com/rabbitmq/amqp091-go"
)

// oweReply tells the Monitor of c's session that a reply is about to be owed:
// a publish on a confirm-mode channel of c will be written next. It must be
// called before the write, so that the reply can never be read before it
// counts as owed. It does nothing unless c is the live connection (a channel
// of a connection being abandoned owes nothing that matters) and costs two
// atomic loads when a reply is already owed.
func (s *Supervisor) oweReply(c *amqp.Connection) {
	if ss := s.live.Load(); ss != nil && ss.conn == c {
		ss.monitor.Owe()
	}
}
