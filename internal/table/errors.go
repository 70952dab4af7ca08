package table

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"dualsync/internal/domain"
)

// wrap gives an SDK error its domain kind: NotFound (404), Conflict (409),
// Unavailable (network, timeouts, 408, 429, 5xx), Internal otherwise. A
// failed transaction is judged by the status of the operation that failed.
func wrap(err error, msg string) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	var kind domain.Kind
	switch status, _ := failure(err); {
	case status == http.StatusNotFound:
		kind = domain.KindNotFound
	case status == http.StatusConflict:
		kind = domain.KindConflict
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		kind = domain.KindUnavailable
	case status != 0:
		kind = domain.KindInternal
	case transient(err):
		kind = domain.KindUnavailable
	default:
		kind = domain.KindInternal
	}
	if kind == domain.KindUnavailable {
		// Said in the 503's detail: the client learns what is down, not just the step.
		msg = "Table Storage is unavailable: " + msg
	}
	return domain.Wrap(kind, err, msg)
}

// transient reports errors of the connection rather than of the request.
func transient(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

var (
	innerStatus = regexp.MustCompile(`(?m)^HTTP/1\.1 (\d{3})`)
	innerCode   = regexp.MustCompile(`"code"\s*:\s*"([^"]+)"`)
)

// failure returns the HTTP status and error code of a service error (0, ""
// if err is not one). A failed entity-group transaction answers 202 with the
// failing operation's response inside the multipart body, and the SDK
// reports it as a ResponseError with status 202; its payload stays readable.
func failure(err error) (int, string) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return 0, ""
	}
	if re.StatusCode >= 400 || re.RawResponse == nil {
		return re.StatusCode, re.ErrorCode
	}
	body, perr := runtime.Payload(re.RawResponse)
	if perr != nil {
		return http.StatusInternalServerError, re.ErrorCode
	}
	status := 0
	for _, m := range innerStatus.FindAllSubmatch(body, -1) {
		if n, _ := strconv.Atoi(string(m[1])); n >= 400 {
			status = n
			break
		}
	}
	code := re.ErrorCode
	if m := innerCode.FindSubmatch(body); m != nil {
		code = string(m[1])
	}
	if status == 0 {
		status = http.StatusInternalServerError // a failure we cannot read: treat as the service's
	}
	return status, code
}

func hasCode(err error, code string) bool {
	_, c := failure(err)
	return c == code
}
