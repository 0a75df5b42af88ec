package conn

import "testing"

func TestStateString(t *testing.T) {
	want := map[State]string{Connecting: "Connecting", Ready: "Ready", Reconnecting: "Reconnecting",
		Closing: "Closing", Closed: "Closed", State(42): "State(42)"}
	for s, name := range want {
		if got := s.String(); got != name {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, name)
		}
	}
}

func TestSetStateRules(t *testing.T) {
	s := &Supervisor{log: discardLogger(), events: newDispatcher(1, nil, nil, nil)}
	steps := []struct {
		to, want State
	}{
		{Ready, Ready},
		{Ready, Ready},         // same state: ignored
		{Closing, Closing},     //
		{Ready, Closing},       // Closing only leads to Closed
		{Closed, Closed},       //
		{Reconnecting, Closed}, // never leaves Closed
		{Connecting, Closed},
	}
	for i, st := range steps {
		s.mu.Lock()
		before := s.stateCh.wait()
		s.mu.Unlock()
		s.setState(st.to, nil)
		if got := s.State(); got != st.want {
			t.Fatalf("step %d: setState(%v) left %v, want %v", i, st.to, got, st.want)
		}
		changed := false
		select {
		case <-before:
			changed = true
		default:
		}
		if changed != (i == 0 || i == 2 || i == 4) {
			t.Errorf("step %d: state channel closed = %v", i, changed)
		}
	}
}
