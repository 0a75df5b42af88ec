package main

import (
	"fmt"
	"io"
)

func benchMain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "warren bench: not built yet")
	return 2
}
