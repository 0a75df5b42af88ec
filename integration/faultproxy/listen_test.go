package faultproxy

import (
	"errors"
	"net"
	"testing"
)

func TestRefuseFalseReportsBindFailure(t *testing.T) {
	up := startUpstream(t, true)
	p := startProxy(t, up.addr())
	p.Refuse(true)

	squatter, err := net.Listen("tcp", p.Addr())
	if err != nil {
		t.Fatalf("cannot take the proxy's port for the test: %v", err)
	}
	p.Refuse(false)
	if err := p.Err(); !errors.Is(err, ErrRelisten) {
		t.Fatalf("Err() = %v, want ErrRelisten", err)
	}
	if got := p.Mode(); got != Refusing {
		t.Fatalf("Mode() = %v, want %v", got, Refusing)
	}

	_ = squatter.Close()
	p.Refuse(false)
	if err := p.Err(); err != nil {
		t.Fatalf("Err() = %v after the port was freed", err)
	}
	roundTrip(t, dial(t, p.Addr()), "back")
}
