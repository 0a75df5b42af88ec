package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestConfirmationWait(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		settled bool
		ctx     context.Context
		want    error
	}{
		{"settled before ctx ends", true, context.Background(), ErrNacked},
		{"settled wins over an ended ctx", true, done, ErrNacked},
		{"ctx ends first", false, done, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Publisher{window: make(chan struct{}, 1)}
			p.window <- struct{}{}
			c := &Confirmation{p: p, done: make(chan struct{})}
			p.led.push(c)
			if tc.settled {
				p.retireLocked(c, ErrNacked)
				p.retireLocked(c, nil) // a second outcome is ignored
				if p.led.len() != 0 {
					t.Error("retire left the message in the ledger")
				}
				if len(p.window) != 0 {
					t.Error("settle did not free the window slot")
				}
			}
			if err := c.Wait(tc.ctx); !errors.Is(err, tc.want) {
				t.Errorf("Wait = %v, want %v", err, tc.want)
			}
			select {
			case <-c.Done():
				if !tc.settled {
					t.Error("Done closed without settle")
				}
			default:
				if tc.settled {
					t.Error("Done open after settle")
				}
			}
		})
	}
}

func TestPublisherErrors(t *testing.T) {
	many := make([]string, pubMaxListedIDs+5)
	for i := range many {
		many[i] = fmt.Sprintf("id-%d", i)
	}
	tests := []struct {
		name     string
		err      error
		is       error
		contains []string
		excludes []string
	}{
		{"returned", &ReturnedError{Return: amqp.Return{ReplyCode: 312, ReplyText: "NO_ROUTE", Exchange: "ex", RoutingKey: "k"}},
			ErrReturned, []string{"312", "NO_ROUTE", `"ex"`, `"k"`}, nil},
		{"unconfirmed", &UnconfirmedError{MessageIDs: []string{"a", "b"}}, ErrUnconfirmed, []string{"2 message(s)", "a, b"}, nil},
		{"unconfirmed many", &UnconfirmedError{MessageIDs: many}, ErrUnconfirmed,
			[]string{"25 message(s)", "id-19", "and 5 more"}, []string{"id-20"}},
		{"confirm lost with reason", pubConfirmLost(errors.New("socket closed")), ErrConfirmLost, []string{"socket closed"}, nil},
		{"confirm lost without reason", pubConfirmLost(nil), ErrConfirmLost, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.is) {
				t.Errorf("%v does not match %v", tc.err, tc.is)
			}
			msg := tc.err.Error()
			for _, s := range tc.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("%q does not contain %q", msg, s)
				}
			}
			for _, s := range tc.excludes {
				if strings.Contains(msg, s) {
					t.Errorf("%q contains %q", msg, s)
				}
			}
		})
	}
}
