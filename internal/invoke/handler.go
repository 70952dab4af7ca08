package invoke

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Func handles one decoded invocation.
type Func func(ctx context.Context, req Request) (Response, error)

// Handler adapts fn to an http.Handler for POST /<FunctionName>. An invalid
// envelope answers 400, an error from fn 500 with the message in Logs (the
// host then counts the invocation failed and retries a queue message), and
// success 200 with fn's Response. Routing by method is the mux's job.
func Handler(log *slog.Logger, fn Func) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := log.With("function", r.URL.Path, "invocationId", r.Header.Get("X-Azure-Functions-InvocationId"))
		req, err := Decode(r.Body)
		if err != nil {
			log.WarnContext(r.Context(), "invalid invocation envelope", "err", err)
			Write(w, http.StatusBadRequest, Response{Logs: []string{err.Error()}})
			return
		}
		resp, err := call(r.Context(), log, fn, req)
		if err != nil {
			log.ErrorContext(r.Context(), "invocation failed", "err", err)
			Write(w, http.StatusInternalServerError, Response{Logs: []string{err.Error()}})
			return
		}
		Write(w, http.StatusOK, resp)
	})
}

// call runs fn and turns a panic into an error, so the host gets a proper
// failed invocation (and a retry) instead of a dropped connection.
func call(ctx context.Context, log *slog.Logger, fn Func, req Request) (resp Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "invocation panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(ctx, req)
}
