package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// exitUsage is the exit code of a command line that cannot be run (an
// unknown flag, a missing URL). It is not 2, which probe uses for "permanent
// failure" and which flag's own handling would return: a monitoring script
// must be able to tell a typo in its command from a broker refusing it.
const exitUsage = 64 // EX_USAGE in sysexits.h

// parseCommand parses a command's flags, which may come before, after and
// between its arguments (stopping at "--"), and returns the arguments.
// -h, -help and --help print help (the text, then the flags) on stdout and
// end the command with exit code 0; an unknown or malformed flag is reported
// on stderr with a pointer to -h, and ends it with exitUsage. ok is false
// when the command must end with exit.
func parseCommand(fs *flag.FlagSet, args []string, help string, stdout, stderr io.Writer) (rest []string, exit int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // help goes to stdout, below; an error says where to find it
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, strings.TrimLeft(help, "\n"))
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil, 0, false
		}
		if err != nil {
			fmt.Fprintf(stderr, "run \"warren %s -h\" for help\n", fs.Name())
			return nil, exitUsage, false
		}
		remaining := fs.Args()
		consumed := args[:len(args)-len(remaining)]
		if len(remaining) == 0 || (len(consumed) > 0 && consumed[len(consumed)-1] == "--") {
			return append(rest, remaining...), 0, true
		}
		rest = append(rest, remaining[0])
		args = remaining[1:]
	}
}
