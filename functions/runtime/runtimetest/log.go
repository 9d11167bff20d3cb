// Package runtimetest forwards to internal/testsupport for the tests not yet switched to it;
// it goes once none imports it.
package runtimetest

import "github.com/trustplane/trustplane/internal/testsupport"

// Log is testsupport.Log.
type Log = testsupport.Log

// AtLeast is testsupport.AtLeast.
var AtLeast = testsupport.AtLeast
