package dispatcher

import (
	"fmt"
	"strings"

	cesql "github.com/cloudevents/sdk-go/sql/v2"
	cesqlparser "github.com/cloudevents/sdk-go/sql/v2/parser"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

// result is Knative's three-valued filter outcome: a filter with nothing to check says
// noFilter, which lets the event through at the top but is neutral inside all/any/not.
type result int

const (
	pass result = iota
	fail
	noFilter
)

type matcher interface {
	match(e *cloudevents.Event) result
}

// Filter decides whether a Trigger wants an event, with the semantics of Knative Eventing's
// broker filter (knative.dev/eventing/pkg/eventfilter): when spec.filters is set it alone
// applies (all entries must pass); otherwise the legacy spec.filter.attributes exact match.
type Filter struct {
	m matcher
}

// NewFilter compiles a Trigger's filters once; CESQL expressions are parsed here, so an
// invalid expression or an empty exact/prefix/suffix value is a load error rather than a
// filter silently ignored at delivery time.
func NewFilter(spec eventingv1.TriggerSpec) (*Filter, error) {
	switch {
	case len(spec.Filters) > 0:
		ms, err := compileList(spec.Filters, "filters")
		if err != nil {
			return nil, err
		}
		return &Filter{m: allOf(ms)}, nil
	case spec.Filter != nil:
		return &Filter{m: attributesFilter(spec.Filter.Attributes)}, nil
	default:
		return &Filter{m: allOf(nil)}, nil
	}
}

// Match reports whether the event is to be delivered.
func (f *Filter) Match(e *cloudevents.Event) bool {
	return f.m.match(e) != fail
}

func compileList(fs []eventingv1.SubscriptionsAPIFilter, path string) ([]matcher, error) {
	ms := make([]matcher, 0, len(fs))
	for i, f := range fs {
		m, err := compile(f, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func compile(f eventingv1.SubscriptionsAPIFilter, path string) (matcher, error) {
	switch {
	case len(f.Exact) > 0:
		return stringFilter(f.Exact, path+".exact", func(v, want string) bool { return v == want })
	case len(f.Prefix) > 0:
		return stringFilter(f.Prefix, path+".prefix", strings.HasPrefix)
	case len(f.Suffix) > 0:
		return stringFilter(f.Suffix, path+".suffix", strings.HasSuffix)
	case len(f.All) > 0:
		ms, err := compileList(f.All, path+".all")
		return allOf(ms), err
	case len(f.Any) > 0:
		ms, err := compileList(f.Any, path+".any")
		return anyOf(ms), err
	case f.Not != nil:
		m, err := compile(*f.Not, path+".not")
		return not{m}, err
	case f.CESQL != "":
		expr, err := parseCESQL(f.CESQL)
		if err != nil {
			return nil, fmt.Errorf("%s.cesql: invalid expression %q: %w", path, f.CESQL, err)
		}
		return sqlFilter{expr}, nil
	default:
		// An empty filter entry: Knative materialises nothing for it.
		return allOf(nil), nil
	}
}

func parseCESQL(s string) (expr cesql.Expression, err error) {
	// The parser has panicked on some inputs; Knative's webhook guards it the same way.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser failed: %v", r)
		}
	}()
	return cesqlparser.Parse(s)
}

// stringMatch is exact, prefix or suffix: every listed attribute must exist and compare true.
type stringMatch struct {
	attrs map[string]string
	keys  []string
	cmp   func(value, want string) bool
}

func stringFilter(attrs map[string]string, path string, cmp func(string, string) bool) (matcher, error) {
	for _, k := range sortedKeys(attrs) {
		if k == "" || attrs[k] == "" {
			return nil, fmt.Errorf("%s: attribute %q: name and value must not be empty", path, k)
		}
	}
	return stringMatch{attrs: attrs, keys: sortedKeys(attrs), cmp: cmp}, nil
}

func (s stringMatch) match(e *cloudevents.Event) result {
	for _, k := range s.keys {
		v, ok := lookupAttribute(e, k)
		if !ok || !s.cmp(fmt.Sprint(v), s.attrs[k]) {
			return fail
		}
	}
	return pass
}

type all []matcher

func allOf(ms []matcher) matcher { return all(ms) }

func (a all) match(e *cloudevents.Event) result {
	res := noFilter
	for _, m := range a {
		res = m.match(e)
		if res == fail {
			return fail
		}
	}
	return res
}

type anyMatch []matcher

func anyOf(ms []matcher) matcher { return anyMatch(ms) }

func (a anyMatch) match(e *cloudevents.Event) result {
	res := noFilter
	for _, m := range a {
		res = m.match(e)
		if res == pass {
			return pass
		}
	}
	return res
}

type not struct{ m matcher }

func (n not) match(e *cloudevents.Event) result {
	switch n.m.match(e) {
	case pass:
		return fail
	case fail:
		return pass
	}
	return noFilter
}

type sqlFilter struct{ expr cesql.Expression }

func (s sqlFilter) match(e *cloudevents.Event) result {
	v, err := s.expr.Evaluate(*e)
	if b, ok := v.(bool); err == nil && ok && b {
		return pass
	}
	return fail
}

// attributesFilter is the legacy spec.filter.attributes: each attribute must exist and equal
// the value; an empty value means "present and non-empty". As in Knative, the comparison is
// on the attribute's own value, so a non-string extension never equals a string.
type attributesFilter map[string]string

func (a attributesFilter) match(e *cloudevents.Event) result {
	for k, want := range a {
		v, ok := lookupAttribute(e, k)
		if !ok || (want == "" && v == "") || (want != "" && v != any(want)) {
			return fail
		}
	}
	return pass
}

// lookupAttribute finds a context attribute or extension by name as Knative does: every
// context attribute exists (possibly empty), an extension only when set.
func lookupAttribute(e *cloudevents.Event, name string) (any, bool) {
	switch name {
	case "specversion":
		return e.SpecVersion(), true
	case "type":
		return e.Type(), true
	case "source":
		return e.Source(), true
	case "subject":
		return e.Subject(), true
	case "id":
		return e.ID(), true
	case "time":
		b, err := e.Time().MarshalText()
		if err != nil {
			return nil, false
		}
		return string(b), true
	case "dataschema", "schemaurl":
		return e.DataSchema(), true
	case "datacontenttype":
		return e.DataContentType(), true
	case "datamediatype":
		return e.DataMediaType(), true
	case "datacontentencoding":
		return e.DeprecatedDataContentEncoding(), true
	}
	v, ok := e.Extensions()[name]
	return v, ok
}
