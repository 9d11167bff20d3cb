package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustplane/trustplane/functions/runtime"
)

// RedisStore keeps buckets in Redis, shared by every replica. Each bucket is one key holding
// its tat (microseconds); a call's buckets are taken together by one Lua script, so a take is
// atomic and costs one round trip. The replicas' clocks are used (they pass now), so they
// should be NTP-synced, as Kubernetes nodes are. The script names several keys, so the store
// needs one Redis server (or a primary with replicas), not a Redis Cluster.
type RedisStore struct {
	client *redis.Client
}

// NewRedisStore uses client; NewRedisClient makes one with the timeouts limits need.
func NewRedisStore(client *redis.Client) *RedisStore { return &RedisStore{client: client} }

// NewRedisClient connects to rawURL (redis://[user:password@]host:port/db). Socket operations
// end at the caller's deadline (the limits timeout), and dial, read and write get short
// timeouts unless the URL sets them: an unreachable Redis must not hold a call.
func NewRedisClient(rawURL string) (*redis.Client, error) {
	opts, err := RedisOptions(rawURL)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opts), nil
}

// RedisOptions are the client options NewRedisClient uses for rawURL; the error names REDIS_URL
// and never quotes the password.
func RedisOptions(rawURL string) (*redis.Options, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("REDIS_URL is not a redis:// URL: %w", err)
	}
	opts.ContextTimeoutEnabled = true
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 500 * time.Millisecond
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 250 * time.Millisecond
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 250 * time.Millisecond
	}
	return opts, nil
}

// RedisLog is go-redis's own log as JSON lines: it logs a failing dial once per attempt, so
// during an outage the lines are collapsed into one per runtime.RepeatInterval with a count.
// Install it with redis.SetLogger, which is process-wide.
type RedisLog struct{ r *runtime.RepeatedLog }

// NewRedisLog logs to logger.
func NewRedisLog(logger *slog.Logger) *RedisLog {
	return &RedisLog{runtime.NewRepeatedLog(logger, slog.LevelWarn, "redis client", runtime.RepeatInterval)}
}

// Printf implements go-redis's logging interface.
func (l *RedisLog) Printf(_ context.Context, format string, v ...any) {
	l.r.Log("detail", fmt.Sprintf(format, v...))
}

// The scripts mirror MemoryStore's Take and Add. ARGV: now (us), then limit, window (us) and n
// for each key. A bucket expires when it is full again (tat in the past). Take answers {0,
// remaining...} when every bucket had room, else {i, remaining, retry after (us)} of the first
// bucket i (from 1) without room, having taken nothing.
var takeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local tats, rem = {}, {0}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[3*i-1])
  local window = tonumber(ARGV[3*i])
  local n = tonumber(ARGV[3*i+1])
  local interval = window / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local avail = math.floor((now + window - tat) / interval)
  if avail < n then
    if avail < 0 then avail = 0 end
    return {i, avail, math.ceil(tat + n * interval - window - now)}
  end
  tats[i] = tat + math.ceil(n * interval)
  rem[i+1] = avail - n
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
end
return rem
`)

var addScript = redis.NewScript(`
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local limit = tonumber(ARGV[3*i-1])
  local window = tonumber(ARGV[3*i])
  local n = tonumber(ARGV[3*i+1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tat = tat + math.floor(n * window / limit + 0.5)
  if tat <= now then
    redis.call('DEL', KEYS[i])
  else
    redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
end
return 1
`)

func scriptArgs(us []Units, now time.Time) (keys []string, args []any) {
	keys = make([]string, len(us))
	args = make([]any, 0, 1+3*len(us))
	args = append(args, now.UnixMicro())
	for i, u := range us {
		keys[i] = u.Key
		args = append(args, u.Limit, u.Window.Microseconds(), u.N)
	}
	return keys, args
}

// Take implements Store.
func (r *RedisStore) Take(ctx context.Context, us []Units, now time.Time) (int, []Grant, error) {
	keys, args := scriptArgs(us, now)
	res, err := takeScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("redis: take %s: %w", strings.Join(keys, ","), err)
	}
	switch {
	case len(res) == 1+len(us) && res[0] == 0:
		grants := make([]Grant, len(us))
		for i := range grants {
			grants[i].Remaining = res[1+i]
		}
		return -1, grants, nil
	case len(res) == 3 && res[0] >= 1 && int(res[0]) <= len(us):
		return int(res[0]) - 1, []Grant{{Remaining: res[1], RetryAfter: time.Duration(res[2]) * time.Microsecond}}, nil
	}
	return 0, nil, fmt.Errorf("redis: take %s: unexpected reply %v", strings.Join(keys, ","), res)
}

// Add implements Store.
func (r *RedisStore) Add(ctx context.Context, us []Units, now time.Time) error {
	keys, args := scriptArgs(us, now)
	if err := addScript.Run(ctx, r.client, keys, args...).Err(); err != nil {
		return fmt.Errorf("redis: add %s: %w", strings.Join(keys, ","), err)
	}
	return nil
}
