package broker

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkLocalNode measures a private node's boot (to AMQP accepting) and
// stop (to process gone and directory removed), with and without the
// management plugin. Run with -benchtime=3x: each iteration takes seconds.
func BenchmarkLocalNode(b *testing.B) {
	env := describe(context.Background())
	if env.ServerPath == "" {
		b.Fatalf("needs a local rabbitmq-server: %s", env.ServerWhy)
	}
	for _, bc := range []struct {
		name string
		mgmt bool
	}{{"management=off", false}, {"management=on", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var boot, stop time.Duration
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 2*bootTimeout)
				start := time.Now()
				n, err := startLocal(ctx, filepath.Dir(env.ServerPath), env.EpmdPath, Options{Management: bc.mgmt})
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				booted := time.Now()
				err = n.close(ctx)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				boot += booted.Sub(start)
				stop += time.Since(booted)
			}
			b.ReportMetric(boot.Seconds()/float64(b.N), "boot-s/op")
			b.ReportMetric(stop.Seconds()/float64(b.N), "stop-s/op")
		})
	}
}
