package providers

import "testing"

func TestAnthropicStopReasons(t *testing.T) {
	for stop, want := range map[string]string{"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop", "tool_use": "tool_calls", "refusal": "content_filter"} {
		if got := finishReason(stop); got != want {
			t.Errorf("%s -> %s, want %s", stop, got, want)
		}
	}
}
