package runtime

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds what RetryAfter and RetryAfterMillis return, so that a peer's header
// cannot ask for more than a day's wait and a huge number never overflows a Duration.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter reads a Retry-After header: delta-seconds, or an HTTP-date counted from now.
// A fractional number of seconds is taken too, as some LLM providers send one. An absent,
// negative, past or unreadable value is 0; a longer wait than MaxRetryAfter is MaxRetryAfter.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return clampWait(secs, time.Second)
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), 0), MaxRetryAfter)
	}
	return 0
}

// RetryAfterMillis reads the retry-after-ms header some LLM providers send beside
// Retry-After, a number of milliseconds, bounded as RetryAfter is.
func RetryAfterMillis(h http.Header) time.Duration {
	ms, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After-Ms")), 64)
	if err != nil {
		return 0
	}
	return clampWait(ms, time.Millisecond)
}

// clampWait is n units, within 0 and MaxRetryAfter; compared before the multiplication, which
// would overflow, and written so that NaN is 0.
func clampWait(n float64, unit time.Duration) time.Duration {
	if !(n > 0) {
		return 0
	}
	if n >= float64(MaxRetryAfter/unit) {
		return MaxRetryAfter
	}
	return time.Duration(n * float64(unit))
}
