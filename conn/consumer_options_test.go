package conn

import (
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestConsumerOptionsDefaults(t *testing.T) {
	tests := []struct {
		name            string
		in              ConsumerOptions
		wantName        string
		wantPrefetch    int
		wantConcurrency int
	}{
		{"zero", ConsumerOptions{}, "warren-consumer-7", DefaultPrefetch, 1},
		{"named", ConsumerOptions{Name: "orders"}, "orders", DefaultPrefetch, 1},
		{"many handlers", ConsumerOptions{Concurrency: 40}, "warren-consumer-7", 80, 40},
		{"explicit prefetch", ConsumerOptions{Prefetch: 5, Concurrency: 2}, "warren-consumer-7", 5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.withDefaults(7)
			if got.Name != tt.wantName || got.Prefetch != tt.wantPrefetch || got.Concurrency != tt.wantConcurrency {
				t.Errorf("withDefaults = name %q prefetch %d concurrency %d; want %q %d %d",
					got.Name, got.Prefetch, got.Concurrency, tt.wantName, tt.wantPrefetch, tt.wantConcurrency)
			}
			if got.OnError != RetryBackoff || got.AutoAck {
				t.Errorf("withDefaults: OnError %v AutoAck %v; want RetryBackoff and manual acks", got.OnError, got.AutoAck)
			}
			if err := got.validate(); err != nil {
				t.Errorf("defaults do not validate: %v", err)
			}
		})
	}
}

func TestConsumerOptionsCopiesArgs(t *testing.T) {
	args := amqp.Table{"x-priority": int32(5)}
	got := ConsumerOptions{Args: args}.withDefaults(1)
	args["x-priority"] = int32(9)
	if got.Args["x-priority"] != int32(5) {
		t.Error("the options follow edits of the caller's Args")
	}
}

func TestConsumerOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts ConsumerOptions
		want string // part of the error; "" means valid
	}{
		{"negative prefetch", ConsumerOptions{Prefetch: -1}, "Prefetch"},
		{"prefetch too large", ConsumerOptions{Prefetch: 70000}, "Prefetch"},
		{"negative concurrency", ConsumerOptions{Concurrency: -2}, "Concurrency"},
		{"unknown policy", ConsumerOptions{OnError: RequeuePolicy(9)}, "OnError"},
		{"long name", ConsumerOptions{Name: strings.Repeat("n", 256)}, "Name"},
		{"bad args", ConsumerOptions{Args: amqp.Table{"x": struct{}{}}}, "Args"},
		{"short retry delay", ConsumerOptions{Retry: RetryPolicy{Delays: []time.Duration{time.Microsecond}}}, "Retry.Delays"},
		{"negative attempts", ConsumerOptions{Retry: RetryPolicy{MaxAttempts: -1}}, "Retry.MaxAttempts"},
		{"negative dedupe size", ConsumerOptions{Dedupe: &DedupeOptions{Size: -1}}, "Dedupe.Size"},
		{"valid", ConsumerOptions{Prefetch: 1, Concurrency: 1, OnError: RequeueNever}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.withDefaults(1).validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConsumerOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validate() = %v, want ErrInvalidConsumerOptions about %s", err, tt.want)
			}
		})
	}
}

func TestRequeuePolicyString(t *testing.T) {
	for p, want := range map[RequeuePolicy]string{
		RetryBackoff: "RetryBackoff", RequeueAlways: "RequeueAlways", RequeueOnce: "RequeueOnce",
		RequeueNever: "RequeueNever", RequeuePolicy(9): "RequeuePolicy(9)",
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}
