package providers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

const maxUpstreamBody = 64 << 20

// post sends a JSON request and returns the response when it is 2xx; anything else becomes an
// *UpstreamError. The caller closes the body.
func post(ctx context.Context, client *http.Client, provider, url string, header http.Header, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &UpstreamError{Provider: provider, Err: err}
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &UpstreamError{Provider: provider, Err: transportError(ctx, err)}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	typ, msg := errorMessageOf(raw)
	if resp.StatusCode == http.StatusUnauthorized {
		// The provider refused router's own key, and its message may quote it (OpenAI's does):
		// it must reach neither the client nor the recorded call.
		typ, msg = "", "the provider rejected the API key router is configured with"
	}
	return nil, &UpstreamError{Provider: provider, Status: resp.StatusCode, Type: typ, Message: msg, RetryAfter: retryAfter(resp.Header)}
}

// transportError keeps a deadline recognisable however the transport wrapped it.
func transportError(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return err
}

func readBody(ctx context.Context, provider string, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
	if err != nil {
		return nil, &UpstreamError{Provider: provider, Err: transportError(ctx, err)}
	}
	return b, nil
}

// retryAfter is how long the provider asks to wait: OpenAI's retry-after-ms when it sends one,
// else Retry-After.
func retryAfter(h http.Header) time.Duration {
	if d := runtime.RetryAfterMillis(h); d > 0 {
		return d
	}
	return runtime.RetryAfter(h, time.Now())
}
