// Command warren shows warren at work and checks brokers:
//
//	warren demo  [-duration 45s] [-rate 200] [-faults close,partition,alarm,stop]
//	warren probe [-json] [-timeout 10s] URL
//	warren bench [-json FILE] [-scenarios ...]
//
// demo runs a live chaos demo against a real RabbitMQ (found or started the
// way the integration tests do it); probe connects once and reports on a
// broker; bench measures warren against raw amqp091-go and its reconnect
// baselines.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "probe":
		return probeMain(args[1:], stdout, stderr)
	case "demo":
		return demoMain(args[1:], stdout, stderr)
	case "bench":
		return benchMain(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "warren: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  warren demo  [flags]       live chaos demo against a real RabbitMQ
  warren probe [flags] URL   connect once and report on a broker (exit 0 healthy, 1 transient, 2 permanent)
  warren bench [flags]       warren against raw amqp091-go and its reconnect baselines
Run "warren COMMAND -h" for a command's flags.
`)
}
