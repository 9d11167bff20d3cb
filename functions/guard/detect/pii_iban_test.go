package detect

import "testing"

func TestIBAN(t *testing.T) {
	runCases(t, IBAN{}, "pii.iban", []tcase{
		{"IBAN: DE89 3704 0044 0532 0130 00.", []string{"DE89 3704 0044 0532 0130 00"}},
		{"pay GB82WEST12345698765432 now", []string{"GB82WEST12345698765432"}},
		{"FR1420041010050500013M02606", []string{"FR1420041010050500013M02606"}},
		{"ES9121000418450200051332 y ES7921000813610123456789", []string{"ES9121000418450200051332", "ES7921000813610123456789"}},
		{"DE89 3704 0044 0532 0130 01", nil}, // check digits fail
		{"DE89370400440532013000X", nil},     // too long
		{"DE8937040044053201300", nil},       // too short
		{"ZZ89370400440532013000", nil},      // no such country
	})
}

func TestIPv6(t *testing.T) {
	runCases(t, IPv6{}, "pii.ip_address", []tcase{
		{"from 2a00:1450:4001:82b::200e.", []string{"2a00:1450:4001:82b::200e"}},
		{"peer [2606:4700:4700::1111]:443", []string{"2606:4700:4700::1111"}},
		{"at 12:30:45 today", nil},
		{"mac 00:1a:2b:3c:4d:5e", nil},
		{"loopback ::1", nil},
		{"doc 2001:db8::1", nil},
		{"c++ std::vector", nil},
	})
}
