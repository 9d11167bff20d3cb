package clickhouse

import (
	"testing"
	"time"
)

func TestByPartitionsKeepsEveryRowAndMonthsWhole(t *testing.T) {
	month := func(t *time.Time) time.Time { return *t }
	var rows []time.Time
	for i := 0; i < 1000; i++ {
		rows = append(rows, time.Date(1990+i*7%80, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.FixedZone("x", 3600)))
	}
	parts := byPartitions(rows, month, 100)
	seen := map[int]int{} // month -> part it went to
	total := 0
	for p, part := range parts {
		months := map[int]bool{}
		for _, r := range part {
			u := r.UTC()
			m := u.Year()*12 + int(u.Month())
			months[m] = true
			if q, ok := seen[m]; ok && q != p {
				t.Fatalf("month %d in parts %d and %d", m, q, p)
			}
			seen[m] = p
		}
		if len(months) > 100 {
			t.Errorf("part %d spans %d months", p, len(months))
		}
		total += len(part)
	}
	if total != len(rows) || len(parts) < 2 {
		t.Fatalf("%d rows in %d parts, want all %d in several", total, len(parts), len(rows))
	}
	few := []time.Time{time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), time.Date(2034, 4, 1, 0, 0, 0, 0, time.UTC)} // 99 months apart
	if one := byPartitions(few, month, 100); len(one) != 1 || &one[0][0] != &few[0] {
		t.Errorf("months within the limit: %d parts, or a copy", len(one))
	}
}
