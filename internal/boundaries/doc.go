// Package boundaries holds only a test: that each function links no other function's service
// code, and that no deployed binary links the embedded Kafka broker.
package boundaries
