package wsclient

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// maxRetryAfter caps a server's Retry-After, so a bad header cannot park the client.
const maxRetryAfter = time.Hour

// suggest is the default retry policy (the table in the README): what to do after
// cause, with the backoff's next delay, or a longer Retry-After.
func suggest(cause error, bo *backoff.ExponentialBackOff) Decision {
	var (
		ce  *CloseError
		he  *HandshakeError
		tle *TLSError
	)
	switch {
	case errors.As(cause, &ce):
		if ce.Local && ce.Err == nil {
			return Stop() // the handler closed deliberately
		}
		if stopCloseCode(ce.Code) {
			return Stop()
		}
	case errors.As(cause, &tle):
		return Stop()
	case errors.As(cause, &he):
		switch code := he.StatusCode; {
		case code == http.StatusSwitchingProtocols:
			if errors.Is(he.Err, errBadSubprotocol) || errors.Is(he.Err, errBadExtension) {
				return Stop()
			}
		case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
			if ra, ok := retryAfter(he.Header.Get("Retry-After")); ok {
				return ReconnectAfter(max(ra, bo.NextBackOff()))
			}
		default: // 3xx, other 4xx
			return Stop()
		}
	}
	return ReconnectAfter(bo.NextBackOff())
}

// stopCloseCode: close codes that say retrying the same way cannot help.
func stopCloseCode(code int) bool {
	switch code {
	case CloseProtocolError, CloseUnsupportedData, CloseInvalidPayload, ClosePolicyViolation,
		CloseMessageTooBig, CloseMandatoryExt:
		return true
	}
	return false
}

// retryAfter parses Retry-After: delay-seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return min(time.Duration(min(s, int(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), maxRetryAfter), true
	}
	return 0, false
}
