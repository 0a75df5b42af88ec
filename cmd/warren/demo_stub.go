package main

import (
	"fmt"
	"io"
)

func demoMain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "warren demo: not built yet")
	return 2
}
