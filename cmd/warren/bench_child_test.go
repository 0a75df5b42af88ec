package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		max    int
		want   string
	}{
		{"under", []string{"ab", "cd"}, 8, "abcd"},
		{"exact", []string{"abcd"}, 4, "abcd"},
		{"over in one write", []string{"abcdefgh"}, 3, "fgh"},
		{"over across writes", []string{"abc", "def", "g"}, 4, "defg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &benchTailBuffer{max: tt.max}
			for _, w := range tt.writes {
				if n, err := fmt.Fprint(b, w); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := b.String(); got != tt.want {
				t.Errorf("kept %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBenchIndent(t *testing.T) {
	if got, want := benchIndent("a\nb", "  "), "  a\n  b"; got != want {
		t.Errorf("benchIndent = %q, want %q", got, want)
	}
	if strings.Contains(benchIndent("x", "> "), "\n") {
		t.Error("one line became two")
	}
}
