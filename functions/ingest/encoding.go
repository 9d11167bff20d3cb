package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errDecompressedTooLarge is a gzip body that inflates past the request limit.
var errDecompressedTooLarge = errors.New("the decompressed body exceeds the request limit")

// contentCoding reads Content-Encoding: identity or gzip (x-gzip, its old name), each in any
// case. Any other coding, or more than one gzip, is refused: reading such a body as plain would
// take the client's bytes for something they are not.
func contentCoding(header http.Header) (gzipped bool, err error) {
	var codings []string
	for _, v := range header.Values("Content-Encoding") {
		for _, coding := range strings.Split(v, ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return false, nil
	case len(codings) == 1 && (strings.EqualFold(codings[0], "gzip") || strings.EqualFold(codings[0], "x-gzip")):
		return true, nil
	}
	return false, fmt.Errorf("the body's Content-Encoding %q is not supported: send it uncompressed or gzip", strings.Join(codings, ", "))
}

// gunzip inflates a gzip body (one or more members) into at most limit bytes. Past limit it
// stops reading and returns errDecompressedTooLarge, so that a decompression bomb costs at most
// limit bytes of memory; bytes that are not gzip are an error naming the problem.
func gunzip(body []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("the body is not valid gzip: %v", err)
	}
	var out bytes.Buffer
	// Most bodies inflate 3 to 10 times; start there, within the limit.
	out.Grow(int(min(int64(len(body))*4, limit)) + bytes.MinRead)
	n, err := out.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("the body is not valid gzip: %v", err)
	}
	if n > limit {
		return nil, errDecompressedTooLarge
	}
	return out.Bytes(), nil
}
