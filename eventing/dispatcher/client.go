package dispatcher

import (
	"fmt"
	"io"
	"net/http"
)

// newHTTPClient is the client deliveries and HTTP dead letters go through when Config has
// none: keep-alive with no overall timeout (each request carries the delivery timeout).
func newHTTPClient() *http.Client {
	// Keep a connection for every delivery that can be in flight: with fewer idle
	// connections than concurrent requests, each request beyond them dials a new
	// connection and closes it after, which costs more than the delivery itself.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // no overall limit; the per-host one below bounds it
	tr.MaxIdleConnsPerHost = 8192
	return &http.Client{Transport: tr}
}

// response is what a delivery needs of a subscriber's answer, its body read whole (up to
// limit bytes; a longer body is cut there).
type response struct {
	status int
	header http.Header
	body   []byte
}

// send POSTs a delivery and reads the answer. Delivery is at least once, so a request that
// a kept-alive connection lost before any answer may be sent again on a new one: the empty
// Idempotency-Key entry tells net/http so without sending the header.
func send(client *http.Client, req *http.Request, limit int64) (response, error) {
	req.Header["Idempotency-Key"] = nil
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	var body []byte
	if resp.ContentLength != 0 { // most acknowledgements have no body: nothing to read
		if body, err = io.ReadAll(io.LimitReader(resp.Body, limit)); err != nil {
			return response{}, fmt.Errorf("read response: %w", err)
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}
