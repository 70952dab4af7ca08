package devhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"dualsync/devhost/childproc"
)

// worker runs the custom handler process and restarts it when it dies.
type worker struct {
	app          *app
	log          *logger
	stdout       io.Writer
	stderr       io.Writer
	startTimeout time.Duration

	mu       sync.Mutex
	base     string        // http://127.0.0.1:<port> of the running handler
	ready    chan struct{} // closed once base answers
	cmd      *exec.Cmd
	exited   chan struct{}
	stopping bool
	stopCh   chan struct{} // closed by stop
	done     chan struct{} // closed when the supervisor has finished
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start launches the handler and waits until it answers; on success a
// supervisor restarts it whenever it exits until stop is called.
func (w *worker) start(ctx context.Context) error {
	w.mu.Lock()
	w.ready = make(chan struct{})
	w.done = make(chan struct{})
	w.stopCh = make(chan struct{})
	w.mu.Unlock()
	if err := w.launch(ctx); err != nil {
		close(w.done)
		return err
	}
	go w.supervise()
	return nil
}

func (w *worker) launch(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pick a port for the handler: %w", err)
	}
	id := newID()
	cmd := exec.Command(w.app.exe, w.app.args...)
	cmd.Dir = w.app.workDir
	p := strconv.Itoa(port)
	// HOST HttpWorkerProcess: current and legacy names, plus the app root.
	cmd.Env = append(append([]string(nil), w.app.env...),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+p,
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+id,
		"FUNCTIONS_HTTPWORKER_PORT="+p,
		"FUNCTIONS_HTTPWORKER_ID="+id,
		"FUNCTIONS_APP_ROOT_PATH="+w.app.root,
	)
	cmd.Stdout = w.stdout
	cmd.Stderr = w.stderr
	// Own process group (a terminal's Ctrl-C reaches devhost only, which
	// drains invocations before it stops the handler and its children), and
	// on Linux killed by the OS if devhost dies without stopping it.
	if err := childproc.Start(cmd); err != nil {
		return fmt.Errorf("start handler %q (host.json customHandler.description.defaultExecutablePath): %w", w.app.exe, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	w.log.printf("Started handler process %d: %s (port %d, worker id %s)", cmd.Process.Pid, w.app.exe, port, id)

	base := "http://127.0.0.1:" + p
	deadline := time.NewTimer(w.startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		// HOST IsWorkerReady: any HTTP response to GET / means ready.
		if resp, err := client.Get(base + "/"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("handler %q exited before it answered GET / on port %d: %v", w.app.exe, port, waitErr)
		case <-deadline.C:
			killGroup(cmd, syscall.SIGKILL)
			<-exited
			return fmt.Errorf("handler %q did not answer GET http://127.0.0.1:%d/ within %v (it must listen on FUNCTIONS_CUSTOMHANDLER_PORT)", w.app.exe, port, w.startTimeout)
		case <-ctx.Done():
			killGroup(cmd, syscall.SIGKILL)
			<-exited
			return ctx.Err()
		case <-tick.C:
		}
	}
	w.mu.Lock()
	w.base, w.cmd, w.exited = base, cmd, exited
	close(w.ready)
	w.mu.Unlock()
	w.log.printf("Worker process started and initialized.")
	return nil
}

func (w *worker) supervise() {
	defer close(w.done)
	backoff := time.Second
	for {
		w.mu.Lock()
		exited, cmd := w.exited, w.cmd
		w.mu.Unlock()
		<-exited
		w.mu.Lock()
		if w.stopping {
			w.mu.Unlock()
			return
		}
		w.ready = make(chan struct{}) // invocations wait for the restart
		w.mu.Unlock()
		w.log.printf("Handler process %d exited unexpectedly (%v); restarting it.", cmd.Process.Pid, cmd.ProcessState)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-w.stopCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		for {
			start := time.Now()
			err := w.launch(ctx)
			if err == nil {
				if time.Since(start) > 10*time.Second {
					backoff = time.Second
				}
				break
			}
			w.log.printf("Handler restart failed: %v; retrying in %v.", err, backoff)
			select {
			case <-w.stopCh:
				cancel()
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
		}
		cancel()
		w.mu.Lock()
		stopping := w.stopping
		newCmd, newExited := w.cmd, w.exited
		w.mu.Unlock()
		if stopping { // stop raced with the restart: end the new process too
			killGroup(newCmd, syscall.SIGTERM)
			<-newExited
			return
		}
	}
}

// url waits until the handler is ready and returns its base URL.
func (w *worker) url(ctx context.Context) (string, error) {
	w.mu.Lock()
	ready := w.ready
	w.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return "", fmt.Errorf("handler not ready: %w", ctx.Err())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.base, nil
}

// stop ends the handler: SIGTERM to its process group, SIGKILL after grace.
func (w *worker) stop(grace time.Duration) {
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		return
	}
	w.stopping = true
	close(w.stopCh)
	cmd, exited := w.cmd, w.exited
	w.mu.Unlock()
	if cmd == nil {
		return
	}
	killGroup(cmd, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		w.log.printf("Handler did not stop within %v; killing it.", grace)
		killGroup(cmd, syscall.SIGKILL)
		<-exited
	}
	<-w.done
}

func killGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = cmd.Process.Signal(sig)
	}
}
