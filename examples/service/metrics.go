package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warrenmq/warren/conn"
	warrenprom "github.com/warrenmq/warren/contrib/prometheus"
)

// metrics is what /metrics serves: a registry of its own (not the global
// one, so two services in one test binary do not collide) holding one
// warrenprom.Metrics per connection, the service's own counters, and the Go
// runtime's and process's collectors.
type metrics struct {
	reg *prometheus.Registry
	// pub and con are the warrenprom.Metrics of the two connections,
	// labelled connection="publish" and "consume". Each is created before
	// its supervisor (its dial histogram times the first attempt from New)
	// and registered once the supervisor exists.
	pub, con *warrenprom.Metrics
}

// newMetrics makes the registry with the service's own metrics; the
// connections' join it through register.
func newMetrics(stats *serviceStats, win *window) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		pub: warrenprom.New(warrenprom.Options{Connection: "publish"}),
		con: warrenprom.New(warrenprom.Options{Connection: "consume"}),
	}
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orders_consumed_total",
			Help: "Orders handled by the consumer."}, counter(&stats.consumed)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orders_in_flight",
			Help: "Publishes waiting for a confirm."}, func() float64 { return float64(win.inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orders_in_flight_limit",
			Help: "MAX_IN_FLIGHT."}, func() float64 { return float64(win.size()) }),
	}
	for outcome, n := range map[string]*atomicCounter{
		"accepted": &stats.accepted, "unavailable": &stats.unavailable, "client_error": &stats.clientErrors,
		"bad_gateway": &stats.badGateway, "internal_error": &stats.internalErrors,
	} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orders_responses_total",
			Help: "Responses of POST /orders by outcome.", ConstLabels: prometheus.Labels{"outcome": outcome}}, counter(n)))
	}
	for caught, n := range map[string]*atomicCounter{"in_progress": &stats.busyDuplicates, "just_processed": &stats.lateDuplicates} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orders_duplicates_total",
			Help:        "Copies of processed orders the handler caught (the consumer's dedupe window catches most before it).",
			ConstLabels: prometheus.Labels{"caught": caught}}, counter(n)))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// counter reads n for a CounterFunc: the service counts in atomics on its
// hot paths and the registry reads them only when scraped.
func counter(n *atomicCounter) func() float64 { return func() float64 { return float64(n.Load()) } }

// register adds the two supervisors' Stats to the registry.
func (m *metrics) register(pub, con *conn.Supervisor) error {
	if err := m.pub.Register(m.reg, pub); err != nil {
		return err
	}
	return m.con.Register(m.reg, con)
}

// handler serves the registry in the Prometheus text format.
// HTTPErrorOnError makes a collector's failure a 500 the scraper records,
// rather than a page silently missing metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Registry: m.reg})
}
