package catalog

import "testing"

// BenchmarkValidate compares Validate's two paths on a 600-byte observation (make bench does
// not run it; go test -run '^$' -bench BenchmarkValidate ./eventing/catalog/).
func BenchmarkValidate(b *testing.B) {
	ct, _ := Lookup(TypeObservation)
	data := []byte(benchObservationData)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, ok := ct.fast.accept(data, ct.fastKeys); !ok {
				b.Fatal("not accepted")
			}
		}
	})
	b.Run("jsonschema", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, problems := ct.validateSlow(data); len(problems) > 0 {
				b.Fatal(problems)
			}
		}
	})
}

// BenchmarkUnmarshal is persist's decoding of each delivery: the fast decoder against
// encoding/json's strict Decoder, which it falls back to.
func BenchmarkUnmarshal(b *testing.B) {
	ct, _ := Lookup(TypeObservation)
	data := []byte(benchObservationData)
	for _, c := range []struct {
		name      string
		unmarshal func([]byte) (Payload, error)
	}{{"fast", ct.Unmarshal}, {"encoding-json", ct.unmarshalJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := c.unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
