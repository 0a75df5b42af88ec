package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// remoteReadyTimeout bounds the start of the remote control node.
const remoteReadyTimeout = 30 * time.Second

// remoteCallTimeout is the Erlang-side bound of one call; the Go side is
// bounded by the caller's context as well.
const remoteCallTimeout = 2 * time.Minute

// remoteMarker starts every line of the remote node's answers, so log
// output on the same stream cannot be mistaken for one.
const remoteMarker = "warren-ctl"

// remoteLoop is the remote node's program: it reads "ID NODE MODULE
// FUNCTION" lines, runs rpc:call(NODE, MODULE, FUNCTION, []) on a process of
// its own for each, and prints "warren-ctl ID RESULT" on one line. It halts
// when its standard input closes.
const remoteLoop = `io:format("` + remoteMarker + ` ready~n"),
Loop = fun L() ->
    case io:get_line("") of
        eof -> halt(0);
        {error, _} -> halt(1);
        Line ->
            case string:lexemes(string:trim(Line), " ") of
                [Id, Node, M, F] ->
                    spawn(fun() ->
                        R = rpc:call(list_to_atom(Node), list_to_atom(M), list_to_atom(F), [], ` +
	"%d" + `),
                        io:format("` + remoteMarker + ` ~s ~w~n", [Id, R])
                    end);
                _ ->
                    io:format("` + remoteMarker + ` bad ~w~n", [Line])
            end,
            L()
    end
end,
Loop().`

// remote is a hidden Erlang node, connected to a local cluster's epmd with
// its cookie, that runs calls on the cluster's nodes over Erlang
// distribution. stop_app or start_app through it costs the call itself
// rather than the start-up of a rabbitmqctl VM, which takes 1 to 5 s on a
// loaded 2-core machine: enough for a test's fault to miss the traffic it
// was meant to hit.
type remote struct {
	p  *proc
	in io.WriteCloser // the node's standard input; closing it halts the node

	// write serialises request lines; a channel so waiting is bounded.
	write chan struct{}

	mu      sync.Mutex
	seq     uint64
	pending map[string]chan string // request id -> its answer
	dead    error                  // set once the node's output ended
	done    chan struct{}          // closed once the output reader exited
}

// startRemote starts the remote node for a cluster whose epmd listens on
// epmdPort, with cookie, logging its other output to dir/remote.log.
func startRemote(ctx context.Context, root, erl, dir, name, cookie string, epmdPort int) (*remote, error) {
	logFile, err := os.Create(filepath.Join(dir, "remote.log"))
	if err != nil {
		return nil, fmt.Errorf("broker: creating remote.log: %w", err)
	}
	cmd := rootCommand(context.Background(), root, erl,
		"-sname", name, "-hidden", "-noshell", "-setcookie", cookie,
		"-start_epmd", "false",
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
		"-eval", fmt.Sprintf(remoteLoop, remoteCallTimeout.Milliseconds()))
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "HOME" && !strings.HasPrefix(k, "ERL_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOME="+dir, "ERL_EPMD_PORT="+strconv.Itoa(epmdPort), "ERL_EPMD_ADDRESS=127.0.0.1")
	cmd.Dir = dir
	cmd.Stderr = logFile
	in, err := cmd.StdinPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("broker: remote node stdin: %w", err)
	}
	// An os.Pipe rather than cmd.StdoutPipe: proc's goroutine calls Wait,
	// which would close a StdoutPipe under the reader.
	r, w, err := os.Pipe()
	if err != nil {
		in.Close()
		logFile.Close()
		return nil, fmt.Errorf("broker: remote node pipe: %w", err)
	}
	cmd.Stdout = w
	p, err := startProc(cmd)
	w.Close()
	if err != nil {
		r.Close()
		in.Close()
		logFile.Close()
		return nil, fmt.Errorf("broker: starting remote node: %w", err)
	}
	rm := &remote{p: p, in: in, write: make(chan struct{}, 1), pending: map[string]chan string{}, done: make(chan struct{})}
	rm.write <- struct{}{}
	ready := make(chan struct{})
	go rm.read(r, logFile, ready)

	t := time.NewTimer(remoteReadyTimeout)
	defer t.Stop()
	select {
	case <-ready:
		return rm, nil
	case <-rm.done:
		err = fmt.Errorf("broker: remote node exited before it was ready: %v (see %s)", p.err, logFile.Name())
	case <-t.C:
		err = fmt.Errorf("broker: remote node not ready within %v", remoteReadyTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("broker: starting remote node: %w", ctx.Err())
	}
	return nil, errors.Join(err, rm.close())
}

// read dispatches the node's answers to their callers and copies every
// other line to out. It closes ready at the ready line and, when the output
// ends, fails every pending call.
func (rm *remote) read(r io.ReadCloser, out io.WriteCloser, ready chan<- struct{}) {
	defer close(rm.done)
	defer r.Close()
	defer out.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, remoteMarker+" ")
		if !ok {
			fmt.Fprintln(out, line)
			continue
		}
		id, result, _ := strings.Cut(rest, " ")
		if id == "ready" && !isReady {
			isReady = true
			close(ready)
			continue
		}
		rm.mu.Lock()
		ch := rm.pending[id]
		delete(rm.pending, id)
		rm.mu.Unlock()
		if ch != nil {
			ch <- result // capacity 1, one answer per id
		} else {
			fmt.Fprintln(out, line)
		}
	}
	_, _ = io.Copy(out, r)
	rm.mu.Lock()
	rm.dead = errors.New("broker: remote node exited")
	rm.mu.Unlock()
}

// call runs module:function() on node and returns the term it returned,
// as Erlang prints it; a failed rpc returns {badrpc,Reason}.
func (rm *remote) call(ctx context.Context, node, module, function string) (string, error) {
	answer := make(chan string, 1)
	rm.mu.Lock()
	if rm.dead != nil {
		rm.mu.Unlock()
		return "", rm.dead
	}
	rm.seq++
	id := strconv.FormatUint(rm.seq, 10)
	rm.pending[id] = answer
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		delete(rm.pending, id)
		rm.mu.Unlock()
	}()

	select {
	case <-rm.write:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	_, err := fmt.Fprintf(rm.in, "%s %s %s %s\n", id, node, module, function)
	rm.write <- struct{}{}
	if err != nil {
		return "", fmt.Errorf("broker: remote call: %w", err)
	}
	select {
	case result := <-answer:
		return result, nil
	case <-rm.done:
		return "", errors.New("broker: remote node exited during the call")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// callOK runs module:function() on node and fails unless it returned ok.
func (rm *remote) callOK(ctx context.Context, node, module, function string) error {
	result, err := rm.call(ctx, node, module, function)
	if err != nil {
		return fmt.Errorf("broker: %s:%s() on %s: %w", module, function, node, err)
	}
	if result != "ok" {
		if len(result) > maxErrorOutput {
			result = result[:maxErrorOutput] + "..."
		}
		return fmt.Errorf("broker: %s:%s() on %s returned %s", module, function, node, result)
	}
	return nil
}

// close halts the node by closing its input, or kills it if it does not
// exit in time, and waits (bounded) for the output reader.
func (rm *remote) close() error {
	rm.in.Close()
	var err error
	if !rm.p.waitExit(exitWait) {
		err = rm.p.kill(exitWait)
	}
	t := time.NewTimer(exitWait)
	defer t.Stop()
	select {
	case <-rm.done:
	case <-t.C:
		err = errors.Join(err, errors.New("broker: remote node's output still open after it exited"))
	}
	return err
}
