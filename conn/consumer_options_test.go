package conn

import (
	"errors"
	"strings"
	"testing"

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
			if got.OnError != RequeueAlways || got.AutoAck {
				t.Errorf("withDefaults: OnError %v AutoAck %v; want RequeueAlways and manual acks", got.OnError, got.AutoAck)
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

func TestRequeuePolicy(t *testing.T) {
	tests := []struct {
		policy            RequeuePolicy
		name              string
		first, redelivery bool // requeue on the first failure, on a redelivery's failure
	}{
		{RequeueAlways, "RequeueAlways", true, true},
		{RequeueOnce, "RequeueOnce", true, false},
		{RequeueNever, "RequeueNever", false, false},
		{RequeuePolicy(9), "RequeuePolicy(9)", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.policy.requeue(false); got != tt.first {
				t.Errorf("requeue(first failure) = %v, want %v", got, tt.first)
			}
			if got := tt.policy.requeue(true); got != tt.redelivery {
				t.Errorf("requeue(redelivered) = %v, want %v", got, tt.redelivery)
			}
		})
	}
}
