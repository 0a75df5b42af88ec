package conn

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestQueueArgsTable(t *testing.T) {
	tests := []struct {
		name string
		in   QueueArgs
		want amqp.Table
	}{
		{"zero", QueueArgs{}, amqp.Table{}},
		{"quorum with a delivery limit and a dead-letter queue",
			QueueArgs{Type: amqp.QueueTypeQuorum, DeliveryLimit: 5, DeadLetter: DeadLetterToQueue("orders.dead")},
			amqp.Table{amqp.QueueTypeArg: "quorum", DeliveryLimitArg: int64(5), DeadLetterExchangeArg: "",
				DeadLetterRoutingKeyArg: "orders.dead"}},
		{"classic bounded with a TTL",
			QueueArgs{MessageTTL: 1500 * time.Millisecond, MaxLength: 100, Overflow: amqp.QueueOverflowRejectPublish,
				DeadLetter: &DeadLetter{Exchange: "dlx"}, SingleActiveConsumer: true},
			amqp.Table{amqp.QueueMessageTTLArg: int64(1500), amqp.QueueMaxLenArg: int64(100),
				amqp.QueueOverflowArg: "reject-publish", DeadLetterExchangeArg: "dlx", amqp.SingleActiveConsumerArg: true}},
		{"stream", QueueArgs{Type: amqp.QueueTypeStream, MaxLengthBytes: 1 << 30, MaxAge: 7 * 24 * time.Hour},
			amqp.Table{amqp.QueueTypeArg: "stream", amqp.StreamMaxLenBytesArg: int64(1 << 30), amqp.StreamMaxAgeArg: "604800s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Table()
			if err != nil {
				t.Fatalf("Table() error %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Table() = %v, want %v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the table is not a valid AMQP table: %v", err)
			}
		})
	}
}

func TestQueueArgsRefusesWhatTheBrokerWould(t *testing.T) {
	tests := []struct {
		name string
		in   QueueArgs
		want string
	}{
		{"delivery limit on a classic queue", QueueArgs{DeliveryLimit: 3}, "DeliveryLimit"},
		{"unknown type", QueueArgs{Type: "lazy"}, "Type"},
		{"dead letter to nowhere", QueueArgs{DeadLetter: &DeadLetter{}}, "RoutingKey"},
		{"TTL on a stream", QueueArgs{Type: amqp.QueueTypeStream, MessageTTL: time.Second}, "MessageTTL"},
		{"max age on a classic queue", QueueArgs{MaxAge: time.Hour}, "MaxAge"},
		{"reject-publish-dlx on quorum", QueueArgs{Type: amqp.QueueTypeQuorum, Overflow: amqp.QueueOverflowRejectPublishDLX}, "Overflow"},
		{"unknown overflow", QueueArgs{Overflow: "block"}, "Overflow"},
		{"negative length", QueueArgs{MaxLength: -1}, "MaxLength"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.in.Table()
			if !errors.Is(err, ErrInvalidTopology) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Table() error = %v, want ErrInvalidTopology about %s", err, tt.want)
			}
		})
	}
}
