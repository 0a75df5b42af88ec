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
			c := &Confirmation{}
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

// TestLedger: messages stay in sequence order through removals at the
// front, in the middle and at the back, the written prefix shrinks with
// them, and a confirm finds its message by tag only within that prefix.
func TestLedger(t *testing.T) {
	pc := &pubChannel{}
	var l ledger
	var cs []*Confirmation
	for i := 0; i < 10; i++ {
		c := &Confirmation{}
		l.push(c)
		cs = append(cs, c)
	}
	for i, c := range cs[:6] { // written on pc with tags 1..6
		c.pc, c.tag = pc, uint64(i+1)
	}
	l.sent = 6
	for _, i := range []int{0, 3, 9, 7} {
		l.remove(cs[i])
	}
	l.remove(cs[3]) // twice: ignored
	var seqs []uint64
	for _, c := range l.all() {
		seqs = append(seqs, c.seq)
	}
	if got := fmt.Sprint(seqs); got != "[2 3 5 6 7 9]" || l.sent != 4 {
		t.Fatalf("ledger %s with %d sent, want [2 3 5 6 7 9] with 4", got, l.sent)
	}
	for tag, want := range map[uint64]*Confirmation{2: cs[1], 5: cs[4], 6: cs[5], 1: nil, 4: nil, 7: nil} {
		if got := l.sentWith(tag); got != want {
			t.Errorf("sentWith(%d) = %p, want %p", tag, got, want)
		}
	}
	for i := 0; i < 100; i++ { // compaction keeps the order
		c := &Confirmation{}
		l.push(c)
		l.remove(l.at(0))
	}
	if l.len() != 6 || l.at(0).seq != 105 || l.at(5).seq != 110 {
		t.Errorf("after 100 pushes and pops: %d messages, seq %d..%d", l.len(), l.at(0).seq, l.at(l.len()-1).seq)
	}
}
