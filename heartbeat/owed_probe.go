package heartbeat

// The owed probe: telling a broker that holds replies from a dead one.
//
// A live broker can hold the replies a client is owed for longer than the
// owed limit: a quorum queue whose leader's node died confirms nothing until
// a new leader takes commands (measured on a 3-node RabbitMQ 3.10.8 cluster
// at 1,000 msg/s: 0.35 to 0.6 s, and 2.9 s on a loaded host, against the
// 500 ms limit the default was then), and a queue writing to a slow disk
// confirms late.
// Silence from the queues is then no evidence about the peer, and declaring
// it dead only moves the client to another node whose queues wait for the
// same leader. The broker's connection and channel processes keep
// answering meanwhile: in the same measurement a basic.qos on another
// channel of the publishing connection came back within 12 ms every time.
//
// So, a third of the way to the owed limit, the Monitor asks its owner to
// send such a request (SetOwedProbe), leaving two thirds of the limit for
// the answer: on a loaded host (load average 11 on 2 cores) a RabbitMQ 4.0.5
// node answered channel.open and basic.qos during an election within 193 ms,
// but one probe sent halfway to the 500 ms limit went unanswered. Any read,
// the probe's answer included, ends the owed wait, so a peer that answers is
// not declared dead; the next publish starts a new wait, which probes again.
// A partitioned peer answers nothing, and the verdict still falls at the
// limit: detection is not slower. No verdict falls without a probe, nor
// less than two thirds of the limit after it: a timer that fires late (a
// starved host) or a check deferred to the end of an unblock grace sends the
// probe then, and judges two thirds of a limit later.
//
// A probed wait is a sample for the adaptive limit like any other, whichever
// read ended it (the Monitor cannot tell frames apart; over TLS it sees
// ciphertext). When the broker stops reading (credit flow) the probe waits
// behind the publishes, the reply ends the wait, and its gap raises the
// limit as before. When the probe's answer ends it, the sample is a third of
// the limit plus the answer's round trip, so a long election raises the
// limit by three round trips per probed wait (tens of milliseconds), for the
// five to ten minutes a sample counts.
//
// The probe does not help when the broker stops reading the socket (its
// credit flow, a starved host): the probe waits behind the publishes in the
// same byte stream, and the rule judges as it did without it.

// owedProbeDivisor places the probe at this fraction of the owed limit.
const owedProbeDivisor = 3

// SetOwedProbe gives the replies-owed rule a probe: probe is called, on the
// Monitor's timer goroutine and without its lock, when a reply has been owed
// for a third of the owed limit with nothing read, at most once per owed wait. It
// must not block: it should start a request the peer answers on the same
// connection without waiting on whatever holds the reply (see above) and
// return. It must be called before Start; nil, the default, sends no probe.
func (m *Monitor) SetOwedProbe(probe func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probe = probe
}

// OwedProbes returns how many probes the owed rule has asked for.
func (m *Monitor) OwedProbes() uint64 { return m.probes.Load() }
