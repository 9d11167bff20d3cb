package batch

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The TTL path: on servers with TTL rules (clickhouse.Features.TTLRules) every retained table
// carries one TTL element per project,
//
//	toDateTime(<day>, 'UTC') + toIntervalDay(<days + 1>) DELETE WHERE tenant_id = '<t>' AND project_id = '<p>'
//
// beside whatever other elements the table has (the table-wide TTL of the migrations), and
// ClickHouse deletes the expired days in its merges. A row of day d expires at midnight UTC
// that starts day d + days + 1: the same whole days the mutation path deletes, at the same
// moment, whatever the server's time zone. Everything here is pure: it reads what the server
// said and writes statements.

// quote is s as a ClickHouse string literal: backslash and quote escaped, every byte that is
// not printable ASCII written as \xHH, so the literal is plain ASCII whatever s holds.
// Retention only quotes ids that nameRE already accepted; quote is the second guard.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// ruleElement is batch's TTL element for rule r on table t.
func ruleElement(t table, r Rule) string {
	return fmt.Sprintf("toDateTime(%s, 'UTC') + toIntervalDay(%d) DELETE WHERE tenant_id = %s AND project_id = %s",
		t.day, r.Days+1, quote(r.Tenant), quote(r.Project))
}

// ruleRE reads an element ruleElement wrote, as the server shows it again: ClickHouse drops
// DELETE (the default action) and puts each comparison in parentheses; both are optional
// here. The ids are read only in nameRE's charset, which needs no escapes.
var ruleRE = regexp.MustCompile(`^toDateTime\((.+), 'UTC'\) \+ toIntervalDay\((\d+)\) (?:DELETE )?WHERE \(?tenant_id = '([a-z0-9_-]+)'\)? AND \(?project_id = '([a-z0-9_-]+)'\)?$`)

// ownRule is an element of batch's form: its rule and the day expression it uses.
type ownRule struct {
	Rule
	day string
}

// parseRuleElement reads one TTL element. ok is false for an element that is not batch's
// (it does not name tenant_id); an element that names tenant_id in a WHERE but is not of
// batch's form is an error, so batch never overwrites, nor silently keeps, a rule it cannot
// read.
func parseRuleElement(e string) (r ownRule, ok bool, err error) {
	e = strings.Join(strings.Fields(e), " ")
	m := ruleRE.FindStringSubmatch(e)
	if m == nil {
		if strings.Contains(e, "WHERE") && strings.Contains(e, "tenant_id") {
			return ownRule{}, false, fmt.Errorf("TTL element %q filters on tenant_id but is not of the form batch writes", e)
		}
		return ownRule{}, false, nil
	}
	n, err := strconv.Atoi(m[2])
	if err != nil || n < 2 || n > maxRetentionDays+1 || !nameRE.MatchString(m[3]) || !nameRE.MatchString(m[4]) {
		return ownRule{}, false, fmt.Errorf("TTL element %q has batch's form but values batch never writes", e)
	}
	return ownRule{Rule: Rule{Tenant: m[3], Project: m[4], Days: n - 1}, day: m[1]}, true, nil
}

// topLevel calls f for every byte of s outside parentheses, brackets and quoted literals or
// identifiers.
func topLevel(s string, f func(i int)) {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"', '`':
			quote = c
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		default:
			if depth == 0 {
				f(i)
			}
		}
	}
}

// ttlClause is the table TTL in a table's engine_full ("ReplacingMergeTree(version)
// PARTITION BY ... ORDER BY ... TTL <elements> SETTINGS ..."): the text after the top-level
// TTL keyword up to SETTINGS or the end; empty when the table has none.
func ttlClause(engineFull string) string {
	start, end := -1, len(engineFull)
	topLevel(engineFull, func(i int) {
		if i > 0 && engineFull[i-1] != ' ' {
			return
		}
		switch {
		case start < 0 && strings.HasPrefix(engineFull[i:], "TTL "):
			start = i + len("TTL ")
		case start >= 0 && end == len(engineFull) && strings.HasPrefix(engineFull[i:], "SETTINGS "):
			end = i
		}
	})
	if start < 0 {
		return ""
	}
	return strings.TrimSpace(engineFull[start:end])
}

// splitElements splits a TTL clause at its top-level commas.
func splitElements(clause string) []string {
	if strings.TrimSpace(clause) == "" {
		return nil
	}
	var out []string
	last := 0
	topLevel(clause, func(i int) {
		if clause[i] == ',' {
			out = append(out, strings.TrimSpace(clause[last:i]))
			last = i + 1
		}
	})
	return append(out, strings.TrimSpace(clause[last:]))
}

// TTLChange is what a run does to one table's TTL.
type TTLChange struct {
	Table     string
	Kept      []string // elements that are not batch's, kept as the server shows them
	Before    []Rule   // batch's rules the table has, sorted
	After     []Rule   // the rules it should have, sorted
	Statement string   // empty when the table's TTL is already what it should be
}

func sortRules(rs []Rule) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Tenant != rs[j].Tenant {
			return rs[i].Tenant < rs[j].Tenant
		}
		return rs[i].Project < rs[j].Project
	})
}

// planTTL compares table t's TTL (from its engine_full) with rules and writes the statement
// that makes them agree: MODIFY TTL with the kept elements and one element per rule, or
// REMOVE TTL when nothing is left. The table is db.<t> on a single node, db.<t>_local ON
// CLUSTER in cluster mode (engine_full is then the _local table's).
func planTTL(db, cluster string, t table, engineFull string, rules []Rule) (TTLChange, error) {
	p := TTLChange{Table: t.name, After: append([]Rule(nil), rules...)}
	sortRules(p.After)
	same := true
	for _, e := range splitElements(ttlClause(engineFull)) {
		r, ok, err := parseRuleElement(e)
		if err != nil {
			return TTLChange{}, fmt.Errorf("batch: table %s: %w", t.name, err)
		}
		if !ok {
			p.Kept = append(p.Kept, e)
			continue
		}
		if r.day != t.day {
			same = false // written for another day expression: rewrite it
		}
		p.Before = append(p.Before, r.Rule)
	}
	sortRules(p.Before)
	if same && len(p.Before) == len(p.After) {
		for i := range p.Before {
			if p.Before[i] != p.After[i] {
				same = false
			}
		}
		if same {
			return p, nil
		}
	}
	target, onCluster := db+"."+t.name, ""
	if cluster != "" {
		target, onCluster = db+"."+t.name+"_local", " ON CLUSTER "+cluster
	}
	elems := append([]string(nil), p.Kept...)
	for _, r := range p.After {
		elems = append(elems, ruleElement(t, r))
	}
	if len(elems) == 0 {
		p.Statement = "ALTER TABLE " + target + onCluster + " REMOVE TTL"
	} else {
		p.Statement = "ALTER TABLE " + target + onCluster + " MODIFY TTL " + strings.Join(elems, ", ")
	}
	return p, nil
}

// firstKept is the first day a rule keeps on the day of now (UTC): rows of earlier days are
// past the retention.
func firstKept(now time.Time, r Rule) time.Time {
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -r.Days)
}

// expiredQuery counts the rows of table t stored past their project's retention at now
// (stored rows: copies not yet merged count apart). It reads db.<t>, in cluster mode the
// Distributed table over every shard. The one column is a String, so any server answers it
// the same way.
func expiredQuery(db string, t table, rules []Rule, now time.Time) string {
	conds := make([]string, len(rules))
	for i, r := range rules {
		conds[i] = fmt.Sprintf("(tenant_id = %s AND project_id = %s AND %s < toDate(%s))",
			quote(r.Tenant), quote(r.Project), t.day, quote(firstKept(now, r).Format("2006-01-02")))
	}
	return "SELECT toString(count()) FROM " + db + "." + t.name + " WHERE " + strings.Join(conds, " OR ")
}

// ruleNames are rules as BATCH_RETENTION writes them, for logs.
func ruleNames(rs []Rule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s/%s=%d", r.Tenant, r.Project, r.Days)
	}
	return out
}
