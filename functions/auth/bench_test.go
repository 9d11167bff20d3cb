package auth

import (
	"context"
	"testing"
	"time"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// BenchmarkClientVerify measures Verify through the Client against a real auth handler over
// HTTP: warm answers from the cache, cold misses the cache every time (the clock jumps past the
// TTL before each call), so each call is a full request/reply.
func BenchmarkClientVerify(b *testing.B) {
	e := newEnv(b)
	key, _ := e.addKey(b, "acme", authclient.ScopeIngest)
	ctx := context.Background()

	b.Run("warm", func(b *testing.B) {
		c := e.client(b, newFakeClock(), nil)
		if _, err := c.Verify(ctx, key, authclient.ScopeIngest); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Verify(ctx, key, authclient.ScopeIngest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		clock := newFakeClock()
		c := e.client(b, clock, nil)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			clock.Advance(time.Minute)
			if _, err := c.Verify(ctx, key, authclient.ScopeIngest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := e.store.Verify(ctx, key, authclient.ScopeIngest); err != nil {
				b.Fatal(err)
			}
		}
	})
}
