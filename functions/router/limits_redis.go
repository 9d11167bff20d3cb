package router

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps buckets in Redis, shared by every replica. Each bucket is one key holding
// its tat (microseconds), updated by a Lua script so a take is atomic. The replicas' clocks
// are used (they pass now), so they should be NTP-synced, as Kubernetes nodes are.
type RedisStore struct {
	client redis.UniversalClient
}

// NewRedisStore uses client.
func NewRedisStore(client redis.UniversalClient) *RedisStore { return &RedisStore{client: client} }

// The scripts mirror gcraTake and gcraAdd. ARGV: limit, window (us), now (us), then want and
// min, or n. A bucket expires when it is full again (tat in the past).
var takeScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local min = tonumber(ARGV[5])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local avail = math.floor((now + window - tat) / interval)
if avail < min or avail <= 0 then
  if avail < 0 then avail = 0 end
  return {0, avail, math.ceil(tat + min * interval - window - now)}
end
local n = want
if avail < n then n = avail end
tat = tat + math.ceil(n * interval)
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
return {n, avail - n, 0}
`)

var addScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + math.floor(n * window / limit + 0.5)
if tat <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
return 1
`)

// Take implements Store.
func (r *RedisStore) Take(ctx context.Context, key string, limit int64, window time.Duration, want, least int64, now time.Time) (Grant, error) {
	res, err := takeScript.Run(ctx, r.client, []string{key}, limit, window.Microseconds(), now.UnixMicro(), want, least).Int64Slice()
	if err != nil {
		return Grant{}, fmt.Errorf("redis: take %s: %w", key, err)
	}
	if len(res) != 3 {
		return Grant{}, fmt.Errorf("redis: take %s: unexpected reply %v", key, res)
	}
	return Grant{Granted: res[0], Remaining: res[1], RetryAfter: time.Duration(res[2]) * time.Microsecond}, nil
}

// Add implements Store.
func (r *RedisStore) Add(ctx context.Context, key string, limit int64, window time.Duration, n int64, now time.Time) error {
	if err := addScript.Run(ctx, r.client, []string{key}, limit, window.Microseconds(), now.UnixMicro(), n).Err(); err != nil {
		return fmt.Errorf("redis: add %s: %w", key, err)
	}
	return nil
}

// Ping checks that Redis answers.
func (r *RedisStore) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }
