package conn

import (
	"errors"
	"fmt"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

func TestQueueDeprecatedFeature(t *testing.T) {
	tests := []struct {
		q    *Queue
		want string
	}{
		{&Queue{Name: "q"}, featureTransientNonExclusive},
		{&Queue{Name: "q", AutoDelete: true}, featureTransientNonExclusive},
		{&Queue{}, featureTransientNonExclusive},
		{&Queue{Name: "q", Durable: true}, ""},
		{&Queue{Name: "q", Exclusive: true}, ""},
		{&Queue{Exclusive: true, AutoDelete: true}, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("durable=%v,exclusive=%v,autodelete=%v", tt.q.Durable, tt.q.Exclusive, tt.q.AutoDelete), func(t *testing.T) {
			if got := tt.q.deprecatedFeature(); got != tt.want {
				t.Errorf("deprecatedFeature() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDeprecatedRefusal(t *testing.T) {
	internal := &amqp.Error{Code: amqp.InternalError, Reason: "INTERNAL_ERROR", Server: true}
	forced := &amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED", Server: true}
	tests := []struct {
		name      string
		feature   string
		err       error
		permanent bool
	}{
		{"541 answering a deprecated declaration", featureTransientNonExclusive, fmt.Errorf("declare: %w", internal), true},
		{"541 answering a supported declaration", "", internal, false},
		{"320 answering a deprecated declaration", featureTransientNonExclusive, forced, false},
		{"network error", featureTransientNonExclusive, errors.New("broken pipe"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := deprecatedRefusal(tt.feature, tt.err)
			if got := reconnect.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}
