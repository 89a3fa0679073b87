package wsclient

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/ff42ae21/wsclient/internal/transport"
)

// maxRetryAfter caps a server's Retry-After, so a bad header cannot park the client.
const maxRetryAfter = time.Hour

// suggest is the default retry policy (the table in the README): what to do after
// cause, with the backoff's next delay, or a longer Retry-After. certDrops is
// how many attempts in a row, this one included, ended in ErrCertDropped.
func suggest(cause error, bo *backoffPolicy, now time.Time, certDrops int) Decision {
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
		if errors.Is(tle, ErrCertDropped) && certDrops < transport.CertDropsBeforeStop {
			break // perhaps a restart: retried like a network error
		}
		return Stop()
	case errors.As(cause, &he):
		switch code := he.StatusCode; {
		case code == http.StatusSwitchingProtocols:
			// A subprotocol or extension not offered, or a compression
			// answer this client cannot decode, would come again: stop. A
			// broken accept key (a confused middlebox) may heal: retry.
			if errors.Is(he.Err, ErrBadSubprotocol) || errors.Is(he.Err, ErrBadExtension) || errors.Is(he.Err, ErrCompression) {
				return Stop()
			}
		case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
			if ra, ok := retryAfter(he.Header.Get("Retry-After"), now); ok {
				return ReconnectAfter(max(ra, bo.next()))
			}
		default: // 3xx, other 4xx
			return Stop()
		}
	}
	return ReconnectAfter(bo.next())
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
func retryAfter(v string, now time.Time) (time.Duration, bool) {
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
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// backoffPolicy is the owner's exponential backoff with jitter. Max bounds
// every delay, jitter included: the jitter spreads below it. It never gives up.
type backoffPolicy struct {
	b    Backoff
	cur  float64 // the next delay before jitter, in nanoseconds
	rand func() float64
}

func newBackoff(b Backoff) *backoffPolicy {
	p := &backoffPolicy{b: b, rand: rand.Float64}
	p.reset()
	return p
}

func (p *backoffPolicy) reset() { p.cur = float64(p.b.Initial) }

// next returns the next delay and moves on.
func (p *backoffPolicy) next() time.Duration {
	d, ceiling := min(p.cur, float64(p.b.Max)), float64(p.b.Max)
	p.cur = min(p.cur*p.b.Multiplier, ceiling)
	lo, hi := d*(1-p.b.Jitter), min(d*(1+p.b.Jitter), ceiling)
	return time.Duration(lo + (hi-lo)*p.rand())
}
