package conn

import (
	"context"
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestSettleLost(t *testing.T) {
	live := context.Background()
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	connLost := &amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED"}
	noExchange := &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no exchange 'gone' in vhost '/'"}
	precondition := &amqp.Error{Code: amqp.PreconditionFailed, Reason: "PRECONDITION_FAILED - user_id mismatch"}

	msg := func(name, exchange string, ctx context.Context, written bool) *Confirmation {
		return &Confirmation{ctx: ctx, exchange: exchange, msg: amqp.Publishing{MessageId: name}, written: written}
	}
	type outcome struct {
		retry  []string
		failed map[string]error // the error each must match with errors.Is
	}
	tests := []struct {
		name        string
		written     []*Confirmation
		unwritten   []*Confirmation
		reason      error
		channelOnly bool
		policy      ConfirmLostPolicy
		want        outcome
	}{
		{
			name:      "republish carries everything over in order",
			written:   []*Confirmation{msg("w1", "x", live, true), msg("w2", "x", live, true)},
			unwritten: []*Confirmation{msg("u1", "x", live, false)},
			reason:    connLost,
			want:      outcome{retry: []string{"w1", "w2", "u1"}},
		},
		{
			name:      "fail policy fails written, keeps unwritten",
			written:   []*Confirmation{msg("w1", "x", live, true)},
			unwritten: []*Confirmation{msg("u1", "x", live, false)},
			reason:    connLost,
			policy:    ConfirmLostFail,
			want:      outcome{retry: []string{"u1"}, failed: map[string]error{"w1": ErrConfirmLost}},
		},
		{
			name:      "ended contexts fail",
			written:   []*Confirmation{msg("w1", "x", dead, true)},
			unwritten: []*Confirmation{msg("u1", "x", dead, false), msg("u2", "x", dead, true)},
			reason:    connLost,
			want: outcome{failed: map[string]error{
				"w1": context.Canceled, "u1": context.Canceled, "u2": ErrConfirmLost}},
		},
		{
			name:        "channel error blames the named exchange",
			written:     []*Confirmation{msg("ok1", "x", live, true), msg("bad1", "gone", live, true), msg("bad2", "gone", live, true)},
			unwritten:   []*Confirmation{msg("bad3", "gone", live, false)},
			reason:      noExchange,
			channelOnly: true,
			want: outcome{retry: []string{"ok1", "bad3"},
				failed: map[string]error{"bad1": noExchange, "bad2": noExchange}},
		},
		{
			name:        "unattributable channel error blames the oldest",
			written:     []*Confirmation{msg("w1", "x", live, true), msg("w2", "x", live, true)},
			reason:      precondition,
			channelOnly: true,
			want:        outcome{retry: []string{"w2"}, failed: map[string]error{"w1": precondition}},
		},
		{
			name:    "connection errors blame nobody",
			written: []*Confirmation{msg("w1", "gone", live, true)},
			reason:  noExchange,
			want:    outcome{retry: []string{"w1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loss := pubSettleLost(tc.written, tc.unwritten, tc.reason, tc.channelOnly, tc.policy)
			var retry []string
			for _, c := range loss.retry {
				retry = append(retry, c.msg.MessageId)
			}
			if len(retry) != len(tc.want.retry) {
				t.Fatalf("retry %v, want %v", retry, tc.want.retry)
			}
			for i := range retry {
				if retry[i] != tc.want.retry[i] {
					t.Fatalf("retry %v, want %v", retry, tc.want.retry)
				}
			}
			if len(loss.failed) != len(tc.want.failed) {
				t.Fatalf("failed %d messages, want %d", len(loss.failed), len(tc.want.failed))
			}
			for i, c := range loss.failed {
				want, ok := tc.want.failed[c.msg.MessageId]
				if !ok || !errors.Is(loss.errs[i], want) {
					t.Errorf("%s failed with %v, want %v", c.msg.MessageId, loss.errs[i], want)
				}
			}
		})
	}
}

func TestBlamedExchange(t *testing.T) {
	tests := []struct {
		reason error
		want   string
		ok     bool
	}{
		{&amqp.Error{Code: 404, Reason: "NOT_FOUND - no exchange 'orders' in vhost '/'"}, "orders", true},
		{&amqp.Error{Code: 403, Reason: "ACCESS_REFUSED - write access to exchange 'audit' in vhost 'v' refused for user 'u'"}, "audit", true},
		{&amqp.Error{Code: 406, Reason: "PRECONDITION_FAILED - unknown delivery tag 1"}, "", false},
		{&amqp.Error{Code: 404, Reason: "NOT_FOUND - no exchange 'broken"}, "", false},
		{errors.New("exchange 'x'"), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.reason.Error(), func(t *testing.T) {
			got, ok := pubBlamedExchange(tc.reason)
			if got != tc.want || ok != tc.ok {
				t.Errorf("pubBlamedExchange = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
