package runtime

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":            0,
		"7":           7 * time.Second,
		" 7 ":         7 * time.Second,
		"0":           0,
		"-3":          0,
		"1.5":         1500 * time.Millisecond,
		"soon":        0,
		"NaN":         0,
		"Inf":         MaxRetryAfter,
		"-Inf":        0,
		"10000000000": MaxRetryAfter,
		"1e300":       MaxRetryAfter,
		"86400":       MaxRetryAfter,
		"86399":       86399 * time.Second,
		now.Add(90 * time.Second).Format(http.TimeFormat):  90 * time.Second,
		now.Add(-90 * time.Second).Format(http.TimeFormat): 0,
		now.Add(48 * time.Hour).Format(http.TimeFormat):    MaxRetryAfter,
		now.Add(90 * time.Second).Format(time.RFC850):      90 * time.Second,
		"Sun, 29 Nov 2026 25:00:00 GMT":                    0,
	} {
		if got := RetryAfter(http.Header{"Retry-After": {v}}, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
	if got := RetryAfter(http.Header{}, now); got != 0 {
		t.Errorf("no header: %v, want 0", got)
	}
}

func TestRetryAfterMillis(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":           0,
		"250":        250 * time.Millisecond,
		"0.5":        500 * time.Microsecond,
		"0":          0,
		"-1":         0,
		"NaN":        0,
		"later":      0,
		"1e20":       MaxRetryAfter,
		"86400000":   MaxRetryAfter,
		"86399999":   86399999 * time.Millisecond,
		" 250 ":      250 * time.Millisecond,
		"Inf":        MaxRetryAfter,
		"0x1p-2":     250 * time.Microsecond,
		"-100000000": 0,
	} {
		// The header name as providers write it, lower-case, canonicalised by net/http.
		h := http.Header{}
		h.Set("retry-after-ms", v)
		if got := RetryAfterMillis(h); got != want {
			t.Errorf("retry-after-ms %q = %v, want %v", v, got, want)
		}
	}
}

// FuzzRetryAfter checks that any header value gives a wait within 0 and MaxRetryAfter, and
// that a whole number of seconds in range is that many seconds.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{"7", "-3", "1.5", "1e300", "NaN", "Inf", now.Add(time.Minute).Format(http.TimeFormat), "soon"} {
		f.Add(v, int64(0))
	}
	f.Fuzz(func(t *testing.T, v string, nowOffset int64) {
		at := now.Add(time.Duration(nowOffset))
		h := http.Header{"Retry-After": {v}, "Retry-After-Ms": {v}}
		for name, got := range map[string]time.Duration{"Retry-After": RetryAfter(h, at), "retry-after-ms": RetryAfterMillis(h)} {
			if got < 0 || got > MaxRetryAfter {
				t.Fatalf("%s %q = %v, outside 0..%v", name, v, got, MaxRetryAfter)
			}
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && n < uint64(MaxRetryAfter/time.Second) {
			if got := RetryAfter(h, at); got != time.Duration(n)*time.Second {
				t.Fatalf("Retry-After %q = %v, want %ds", v, got, n)
			}
		}
	})
}
