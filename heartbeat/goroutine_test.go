package heartbeat

import (
	"bytes"
	"strconv"
	"testing"
)

func TestParseGoroutineID(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"goroutine 1 [running]:\nmain.main()", 1},
		{"goroutine 18446744073709551615 [running]:", 18446744073709551615},
		{"goroutine 42 [chan receive, 5 minutes]:", 42},
		{"goroutine 42", 0},
		{"goroutine  [running]", 0},
		{"goroutine x [running]", 0},
		{"goroutine 7x [running]", 0},
		{"thread 1 [running]", 0},
		{"", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseGoroutineID([]byte(tc.in)); got != tc.want {
				t.Fatalf("parseGoroutineID(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestFindGoroutine(t *testing.T) {
	dump := []byte("goroutine 1 [running]:\nmain.main()\n\n" +
		"goroutine 12 [chan receive]:\npkg.wait()\n\tfile.go:3\n\n" +
		"goroutine 123 [select]:\npkg.loop()\n")
	tests := []struct {
		id   uint64
		want string
	}{
		{1, "goroutine 1 [running]:\nmain.main()\n"},
		{12, "goroutine 12 [chan receive]:\npkg.wait()\n\tfile.go:3\n"},
		{123, "goroutine 123 [select]:\npkg.loop()\n"},
		{2, ""},
	}
	for _, tc := range tests {
		t.Run(strconv.FormatUint(tc.id, 10), func(t *testing.T) {
			got := findGoroutine(dump, tc.id)
			if string(got) != tc.want {
				t.Fatalf("findGoroutine(dump, %d) = %q, want %q", tc.id, got, tc.want)
			}
			if tc.want == "" && got != nil {
				t.Fatalf("findGoroutine(dump, %d) = non-nil empty slice, want nil", tc.id)
			}
		})
	}
}

func TestGoroutineStackOfAnotherGoroutine(t *testing.T) {
	ids := make(chan uint64)
	release := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var buf [idBufSize]byte
		ids <- goroutineID(&buf)
		blockedInUserCode(release)
	}()
	id := <-ids
	var buf [idBufSize]byte
	if self := goroutineID(&buf); id == 0 || id == self {
		t.Fatalf("goroutineID() = %d in another goroutine and %d here, want distinct non-zero ids", id, self)
	}
	// The goroutine may not have reached the channel receive yet; its stack
	// names the function either way once it is parked there.
	var stack []byte
	for i := 0; i < 100 && !bytes.Contains(stack, []byte("blockedInUserCode")); i++ {
		stack = goroutineStack(id)
	}
	if !bytes.HasPrefix(stack, []byte("goroutine "+strconv.FormatUint(id, 10)+" [")) ||
		!bytes.Contains(stack, []byte("blockedInUserCode")) {
		t.Fatalf("goroutineStack(%d) = \n%s\nwant that goroutine's block naming blockedInUserCode", id, stack)
	}
	close(release)
	<-finished
	if got := goroutineStack(0); got != nil {
		t.Errorf("goroutineStack(0) = %q, want nil", got)
	}
}
