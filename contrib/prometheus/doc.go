// Package warrenprom exports a warren Supervisor, its publishers and its
// consumers to Prometheus.
//
// A Metrics is a prometheus.Collector. Register it for a Supervisor and it
// reads every counter and gauge of the Supervisor's Stats when scraped
// (nothing runs on the hot path for them). Its event handler, publish
// interceptor and handler middleware add what Stats cannot hold: per
// publisher and per consumer counts and latency histograms, outage and
// dial durations.
//
//	m := warrenprom.New(warrenprom.Options{Connection: "orders"})
//	sup, err := conn.New(conn.Options{
//		URLs:           urls,
//		ConnectionName: "orders",
//		OnEvent:        m.OnEvent, // outage and dial histograms
//	})
//	...
//	if err := m.Register(prometheus.DefaultRegisterer, sup); err != nil { ... }
//	pub, err := sup.NewPublisher(ctx, conn.PublisherOptions{
//		Name:         "orders",
//		Interceptors: []conn.PublishInterceptor{m.PublishInterceptor()},
//	})
//	cons, err := sup.Consume(ctx, q, handle, conn.ConsumerOptions{
//		Middleware: []conn.HandlerMiddleware{m.HandlerMiddleware()},
//	})
//
// Every metric carries the label connection (Options.Connection). The
// metrics, with the names they have under the default namespace "warren":
//
//	Name                                   Type       Labels                       Source
//	warren_connection_state                gauge      state                        Stats.State: 1 for the current state, 0 for the others
//	warren_connection_blocked              gauge                                   Stats.Blocked: 1 while the broker blocks the connection
//	warren_state_seconds_total             counter    state                        Stats.TimeIn
//	warren_dials_total                     counter                                 Stats.Dials
//	warren_dials_failed_total              counter                                 Stats.FailedDials
//	warren_connections_total               counter                                 Stats.Connections
//	warren_reconnects_total                counter                                 Stats.Reconnects
//	warren_connections_lost_total          counter                                 Stats.ConnectionsLost
//	warren_dead_peers_total                counter                                 Stats.DeadPeers
//	warren_blocked_total                   counter                                 Stats.BlockedTimes
//	warren_blocked_timeouts_total          counter                                 Stats.BlockedTimeouts
//	warren_hook_failures_total             counter                                 Stats.HookFailures
//	warren_stalls_total                    counter                                 Stats.Stalls
//	warren_events_emitted_total            counter                                 Stats.EventsEmitted
//	warren_events_dropped_total            counter                                 Stats.EventsDropped
//	warren_published_total                 counter                                 Stats.Published (writes, republications included)
//	warren_confirmed_total                 counter                                 Stats.Confirmed
//	warren_nacked_total                    counter                                 Stats.Nacked
//	warren_republished_total               counter                                 Stats.Republished
//	warren_returned_total                  counter                                 Stats.Returned
//	warren_delivered_total                 counter                                 Stats.Delivered
//	warren_handler_errors_total            counter                                 Stats.HandlerErrors
//	warren_handler_panics_total            counter                                 Stats.HandlerPanics
//	warren_publisher_messages_total        counter    publisher, outcome           PublishInterceptor: messages settled (acked, nacked, returned, failed)
//	warren_publish_confirm_seconds         histogram  publisher, outcome           PublishInterceptor: PublishAsync to settlement
//	warren_consumer_deliveries_total       counter    consumer, queue, outcome     HandlerMiddleware: deliveries handled, by Outcome (ack, requeue, reject, retry)
//	warren_handler_duration_seconds        histogram  consumer, queue, outcome     HandlerMiddleware: handler call and settlement
//	warren_outage_seconds                  histogram                               OnEvent: Ready lost to Ready again
//	warren_dial_seconds                    histogram  result                       OnEvent: start of a connection attempt to Connected (ok) or DialFailed (failed)
//
// Histograms use Options.Buckets (default prometheus.DefBuckets, 5 ms to
// 10 s) except the outage histogram, which uses Options.OutageBuckets
// (default 0.1 s to about 14 min).
package warrenprom
