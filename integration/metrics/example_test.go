package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/metrics"
)

// ExampleRegister exports a supervisor's counters with GaugeFunc and
// CounterFunc collectors. The supervisor here points at a closed port, so the
// example runs without a broker and stays Connecting.
func ExampleRegister() {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	sup, err := conn.New(conn.Options{
		URLs:   []string{"amqp://guest:guest@" + addr + "/"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	defer sup.Close(context.Background())

	reg := prometheus.NewRegistry()
	if err := metrics.Register(reg, sup, prometheus.Labels{"service": "orders"}); err != nil {
		panic(err)
	}
	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		if f.GetName() == "warren_state" {
			fmt.Println(f.GetName(), f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	fmt.Println(len(families), "metric families")
	// Output:
	// warren_state 0
	// 12 metric families
}
