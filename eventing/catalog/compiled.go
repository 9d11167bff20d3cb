package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/trustplane/trustplane/internal/jsonscan"
)

// The fast path of Validate: each schema file compiled at init into a tree of nodes that are
// checked while scanning the data in place, without decoding it. It only ever answers
// "valid" or "not proven valid"; for the second, Validate asks the jsonschema validator, which
// names the problems. It must never accept data the jsonschema validator rejects, so it is
// conservative wherever the two could differ: a duplicate property, a number in exponent form
// where an integer is required, a very long number under a bound all send the data to the
// slow path. FuzzFastPathIsSound holds the two together.
//
// The compiler understands the subset of JSON Schema 2020-12 the catalog's schemas use and
// fails on any other keyword, so a schema edit cannot silently weaken the fast path.

// typeSet is a set of JSON Schema types.
type typeSet uint8

const (
	typeNull typeSet = 1 << iota
	typeBoolean
	typeNumber
	typeInteger
	typeString
	typeArray
	typeObject
)

var typeNames = map[string]typeSet{
	"null": typeNull, "boolean": typeBoolean, "number": typeNumber, "integer": typeInteger,
	"string": typeString, "array": typeArray, "object": typeObject,
}

// kindTypes are the schema types a value of each scanned kind can have.
var kindTypes = [...]typeSet{
	jsonscan.Object: typeObject,
	jsonscan.Array:  typeArray,
	jsonscan.String: typeString,
	jsonscan.Number: typeNumber | typeInteger,
	jsonscan.Bool:   typeBoolean,
	jsonscan.Null:   typeNull,
}

// node is one compiled schema. Limits of -1 are absent.
type node struct {
	any   bool // no constraint at all: the value only needs to be JSON
	never bool // the false schema
	types typeSet
	// all are the $ref targets the value must satisfy besides this node's own keywords.
	all []*node

	enum    []string // string values only; nil when there is no enum
	hasEnum bool

	minLength, maxLength int // in code points
	pattern              *regexp.Regexp
	dateTime             bool
	minimum, maximum     *decimal

	props         []prop // properties, then required names that are not properties
	required      uint64 // bits of props
	additional    *node  // nil: any value
	maxProperties int
	items         *node // nil: any value
	maxItems      int
}

type prop struct {
	name string
	node *node
}

var anyNode = &node{any: true}

// maxProps bounds the properties of one object schema, so that a bit mask can tell which
// were seen.
const maxProps = 64

// schemaCompiler compiles one schema document.
type schemaCompiler struct {
	defs map[string]any
	refs map[string]*node
}

// compileSchema compiles a schema file's JSON into the root node of the fast path.
func compileSchema(raw []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	c := &schemaCompiler{refs: map[string]*node{}}
	if m, ok := doc.(map[string]any); ok {
		if defs, ok := m["$defs"]; ok {
			if c.defs, ok = defs.(map[string]any); !ok {
				return nil, fmt.Errorf("$defs: not an object")
			}
		}
	}
	root, err := c.compile(doc, "#", true)
	if err != nil {
		return nil, err
	}
	// Compile every definition, used or not, so that an unknown keyword in one fails now.
	names := make([]string, 0, len(c.defs))
	for name := range c.defs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := c.ref("#/$defs/" + name); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func (c *schemaCompiler) ref(ref string) (*node, error) {
	if n, ok := c.refs[ref]; ok {
		return n, nil
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	def, found := c.defs[name]
	if !ok || !found || strings.ContainsAny(name, "/~%") {
		return nil, fmt.Errorf("$ref %q: only #/$defs/<name> of the same document is supported", ref)
	}
	n := &node{}
	c.refs[ref] = n // before compiling, so that a cycle finds it
	compiled, err := c.compile(def, ref, false)
	if err != nil {
		return nil, err
	}
	*n = *compiled
	return n, nil
}

// annotations are keywords that do not constrain the value.
var annotations = map[string]bool{"title": true, "description": true, "$comment": true}

func (c *schemaCompiler) compile(v any, at string, root bool) (*node, error) {
	switch v := v.(type) {
	case bool:
		if v {
			return anyNode, nil
		}
		return &node{never: true}, nil
	case map[string]any:
		return c.compileObject(v, at, root)
	}
	return nil, fmt.Errorf("%s: a schema must be an object or a boolean", at)
}

func (c *schemaCompiler) compileObject(m map[string]any, at string, root bool) (*node, error) {
	n := &node{minLength: -1, maxLength: -1, maxProperties: -1, maxItems: -1}
	var required []string
	keywords := 0
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		var err error
		switch {
		case annotations[k]:
			continue
		case root && k == "$schema":
			if v != "https://json-schema.org/draft/2020-12/schema" {
				return nil, fmt.Errorf("%s/$schema: only draft 2020-12 is supported", at)
			}
			continue
		case root && (k == "$id" || k == "$defs"):
			continue // $defs are compiled through ref
		case k == "type":
			n.types, err = compileTypes(v)
		case k == "required":
			required, err = stringList(v)
		case k == "properties":
			err = c.compileProperties(n, v, at)
		case k == "additionalProperties":
			n.additional, err = c.compile(v, at+"/additionalProperties", false)
		case k == "items":
			n.items, err = c.compile(v, at+"/items", false)
		case k == "$ref":
			var target *node
			ref, _ := v.(string)
			if target, err = c.ref(ref); err == nil {
				n.all = append(n.all, target)
			}
		case k == "enum":
			n.hasEnum = true
			n.enum, err = stringList(v)
		case k == "minLength":
			n.minLength, err = count(v)
		case k == "maxLength":
			n.maxLength, err = count(v)
		case k == "maxProperties":
			n.maxProperties, err = count(v)
		case k == "maxItems":
			n.maxItems, err = count(v)
		case k == "pattern":
			s, _ := v.(string)
			// The jsonschema validator compiles patterns with the same engine.
			n.pattern, err = regexp.Compile(s)
		case k == "format":
			if v != "date-time" {
				err = fmt.Errorf("unsupported format %v", v)
			}
			n.dateTime = true
		case k == "minimum":
			n.minimum, err = bound(v)
		case k == "maximum":
			n.maximum, err = bound(v)
		default:
			err = fmt.Errorf("unsupported keyword")
		}
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %v", at, k, err)
		}
		keywords++
	}
	// A required name that is not a property is checked by additionalProperties.
	for _, name := range required {
		i := n.find([]byte(name))
		if i < 0 {
			extra := n.additional
			if extra == nil {
				extra = anyNode
			}
			n.props = append(n.props, prop{name, extra})
			i = len(n.props) - 1
		}
		if i >= maxProps {
			return nil, fmt.Errorf("%s: more than %d properties", at, maxProps)
		}
		n.required |= 1 << i
	}
	if len(n.props) > maxProps {
		return nil, fmt.Errorf("%s: more than %d properties", at, maxProps)
	}
	if keywords == 0 {
		return anyNode, nil
	}
	if keywords == 1 && len(n.all) == 1 {
		return n.all[0], nil // a bare $ref
	}
	return n, nil
}

func (c *schemaCompiler) compileProperties(n *node, v any, at string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("not an object")
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sub, err := c.compile(m[name], at+"/properties/"+name, false)
		if err != nil {
			return err
		}
		n.props = append(n.props, prop{name, sub})
	}
	return nil
}

func compileTypes(v any) (typeSet, error) {
	names, ok := v.([]any)
	if !ok {
		names = []any{v}
	}
	var set typeSet
	for _, name := range names {
		s, _ := name.(string)
		t, ok := typeNames[s]
		if !ok {
			return 0, fmt.Errorf("unknown type %v", name)
		}
		set |= t
	}
	return set, nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not an array")
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("only strings are supported, got %v", item)
		}
		out = append(out, s)
	}
	return out, nil
}

func count(v any) (int, error) {
	num, _ := v.(json.Number)
	n, err := strconv.Atoi(string(num))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a non-negative integer: %v", v)
	}
	return n, nil
}

func bound(v any) (*decimal, error) {
	num, _ := v.(json.Number)
	d, ok := parseDecimal([]byte(num))
	if !ok {
		return nil, fmt.Errorf("unsupported bound %v", v)
	}
	return &d, nil
}

// find returns the index of the property named key, or -1.
func (n *node) find(key []byte) int {
	for i := range n.props {
		if n.props[i].name == string(key) {
			return i
		}
	}
	return -1
}

// rootValues records where the values of the root object's properties start, to read the
// partition key from them.
type rootValues struct {
	seen uint64
	at   [maxProps]int
}

// accept reports whether data is proven valid against the schema compiled into n, and returns
// the first non-empty string among the root properties keys (indexes into n.props), as
// Validate's partition key. ok false means "not proven": the data may still be valid.
func (n *node) accept(data []byte, keys []int) (partitionKey string, ok bool) {
	s := jsonscan.New(data)
	if s.Peek() != jsonscan.Object {
		return "", false
	}
	var root rootValues
	if !n.value(&s, &root) || !s.End() {
		return "", false
	}
	for _, i := range keys {
		if root.seen&(1<<i) == 0 {
			continue
		}
		ks := jsonscan.New(data[root.at[i]:])
		if ks.Peek() != jsonscan.String {
			continue
		}
		content, plain := ks.String()
		if len(content) == 0 {
			continue
		}
		if plain {
			return string(content), true
		}
		if k := jsonscan.AppendUnquote(nil, content); len(k) > 0 {
			return string(k), true
		}
	}
	return "", false
}

// value checks the value at the cursor and consumes it. root, if not nil, records the
// positions of this object's properties.
func (n *node) value(s *jsonscan.Scanner, root *rootValues) bool {
	if n.any {
		return s.Skip() != nil
	}
	if n.never {
		return false
	}
	k := s.Peek()
	if k == jsonscan.None || n.types != 0 && n.types&kindTypes[k] == 0 {
		return false
	}
	for _, other := range n.all {
		again := *s // read the same value once more
		if !other.value(&again, nil) {
			return false
		}
	}
	switch k {
	case jsonscan.String:
		content, plain := s.String()
		return s.Err() == nil && n.str(content, plain)
	case jsonscan.Number:
		return n.number(s.Number())
	case jsonscan.Object:
		return !n.hasEnum && n.object(s, root)
	case jsonscan.Array:
		return !n.hasEnum && n.array(s)
	}
	return !n.hasEnum && s.Skip() != nil // true, false, null
}

func (n *node) str(content []byte, plain bool) bool {
	if !plain {
		if n.dateTime {
			return false // time.Time reads the raw text: an escape there is left to the slow path
		}
		var buf [256]byte
		content = jsonscan.AppendUnquote(buf[:0], content)
	}
	if n.hasEnum && !inList(n.enum, content) {
		return false
	}
	if n.minLength >= 0 || n.maxLength >= 0 {
		l := utf8.RuneCount(content)
		if l < n.minLength || n.maxLength >= 0 && l > n.maxLength {
			return false
		}
	}
	if n.pattern != nil && !n.pattern.Match(content) {
		return false
	}
	return !n.dateTime || validDateTime(content)
}

// validDateTime applies the catalog's date-time format to a string's bytes without copying
// them: the string made over them does not outlive the call.
func validDateTime(b []byte) bool {
	if len(b) == 0 {
		return goDateTime("") == nil
	}
	return goDateTime(unsafe.String(&b[0], len(b))) == nil
}

func inList(list []string, s []byte) bool {
	for _, v := range list {
		if v == string(s) {
			return true
		}
	}
	return false
}

// maxNumber and maxExponent bound the numbers compared with a minimum or maximum here;
// longer ones (rare) go to the slow path.
const (
	maxNumber   = 40
	maxExponent = 10000
)

func (n *node) number(raw []byte) bool {
	if raw == nil || n.hasEnum {
		return false
	}
	if n.types != 0 && n.types&typeNumber == 0 && (bytes.ContainsAny(raw, ".eE") || raw[0] == '-' && raw[1] == '0') {
		return false // an integer only in plain form; 1.0, 1e3 or -0 (no unsigned Go field takes it) go to the slow path
	}
	if n.minimum == nil && n.maximum == nil {
		return true
	}
	d, ok := parseDecimal(raw)
	return ok && (n.minimum == nil || d.cmp(n.minimum) >= 0) && (n.maximum == nil || d.cmp(n.maximum) <= 0)
}

func (n *node) object(s *jsonscan.Scanner, root *rootValues) bool {
	if !s.BeginObject() {
		return false
	}
	var seen uint64
	members := 0
	for {
		key, plain, ok := s.Member()
		if !ok {
			break
		}
		members++
		if !plain {
			var buf [64]byte
			key = jsonscan.AppendUnquote(buf[:0], key)
		}
		sub := n.additional
		if i := n.find(key); i >= 0 {
			if seen&(1<<i) != 0 {
				return false // a duplicate: the jsonschema validator sees only the last value
			}
			seen |= 1 << i
			sub = n.props[i].node
			if root != nil {
				s.Peek()
				root.at[i] = s.Offset()
			}
		}
		if sub == nil {
			sub = anyNode
		}
		if !sub.value(s, nil) {
			return false
		}
	}
	if root != nil {
		root.seen = seen
	}
	// members counts duplicates too, so it is never below the count the jsonschema validator
	// sees.
	return s.Err() == nil && seen&n.required == n.required && (n.maxProperties < 0 || members <= n.maxProperties)
}

func (n *node) array(s *jsonscan.Scanner) bool {
	if !s.BeginArray() {
		return false
	}
	items := n.items
	if items == nil {
		items = anyNode
	}
	count := 0
	for s.Element() {
		count++
		if !items.value(s, nil) {
			return false
		}
	}
	return s.Err() == nil && (n.maxItems < 0 || count <= n.maxItems)
}

// decimal is a JSON number, exactly: 0.digits × 10^exp, negative if neg. digits has no leading
// or trailing zeros; it is empty for zero.
type decimal struct {
	neg    bool
	digits [maxNumber]byte
	n      int
	exp    int
}

// parseDecimal reads a number that follows the JSON grammar. It fails for numbers longer than
// maxNumber, which keeps the exponent small too.
func parseDecimal(raw []byte) (d decimal, ok bool) {
	if len(raw) == 0 || len(raw) > maxNumber {
		return d, false
	}
	i := 0
	if raw[0] == '-' {
		d.neg = true
		i++
	}
	point := -1       // digits before the decimal point, once seen
	seen := 0         // digits read
	leadingZeros := 0 // zeros before the first significant digit
	for ; i < len(raw) && raw[i] != 'e' && raw[i] != 'E'; i++ {
		c := raw[i]
		if c == '.' {
			point = seen
			continue
		}
		seen++
		if c == '0' && d.n == 0 {
			leadingZeros++
			continue
		}
		d.digits[d.n] = c
		d.n++
	}
	if point < 0 {
		point = seen
	}
	exp := 0
	if i < len(raw) {
		e, err := strconv.Atoi(string(raw[i+1:]))
		if err != nil || e > maxExponent || e < -maxExponent {
			return d, false
		}
		exp = e
	}
	for d.n > 0 && d.digits[d.n-1] == '0' {
		d.n--
	}
	d.exp = point - leadingZeros + exp
	return d, true
}

// cmp compares two decimals: -1, 0 or +1.
func (d *decimal) cmp(o *decimal) int {
	ds, os := d.sign(), o.sign()
	if ds != os || ds == 0 {
		return compareInts(ds, os)
	}
	var abs int
	if d.exp != o.exp {
		abs = compareInts(d.exp, o.exp)
	} else {
		abs = bytes.Compare(d.digits[:d.n], o.digits[:o.n])
	}
	return abs * ds
}

func (d *decimal) sign() int {
	switch {
	case d.n == 0:
		return 0
	case d.neg:
		return -1
	}
	return 1
}

func compareInts(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
