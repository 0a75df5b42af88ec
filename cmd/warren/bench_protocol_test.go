package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProtocolRoundTrip(t *testing.T) {
	var out bytes.Buffer
	rep := newBenchReporter(&out)
	rep.send(benchMsg{Type: wmReady})
	out.WriteString("panic: not a protocol line\n")
	rep.send(benchMsg{Type: wmLost, T: 42, Err: "forced", DeadPeer: true})
	rep.send(benchMsg{Type: wmResult, Result: &workerResult{PublishNS: 7, Messages: 3}})

	msgs := make(chan benchMsg, 8)
	var junk []string
	readBenchMsgs(&out, msgs, func(s string) { junk = append(junk, s) })
	var got []benchMsg
	for m := range msgs {
		got = append(got, m)
	}
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3: %+v", len(got), got)
	}
	if got[0].Type != wmReady || got[0].T == 0 {
		t.Errorf("ready = %+v, want a stamped time", got[0])
	}
	if got[1].T != 42 || !got[1].DeadPeer || got[1].Err != "forced" {
		t.Errorf("lost = %+v", got[1])
	}
	if r := got[2].Result; r == nil || r.PublishNS != 7 || r.Messages != 3 {
		t.Errorf("result = %+v", got[2].Result)
	}
	if len(junk) != 1 || !strings.HasPrefix(junk[0], "panic:") {
		t.Errorf("junk = %q", junk)
	}
}
