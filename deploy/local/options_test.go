package main

import (
	"flag"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// sampleValue is a valid value for the flag other than its default, distinct per call.
func sampleValue(f *flag.Flag, i int) string {
	switch f.Name {
	case "public-host":
		return "0.0.0.0"
	case "tls-cert", "tls-key":
		return "/tmp/" + f.Name + ".pem"
	}
	if _, err := strconv.Atoi(f.DefValue); err == nil {
		return strconv.Itoa(20000 + i)
	}
	return "/tmp/sample-" + f.Name
}

// Every flag can be set from its variable, and the flag given on the command line wins.
func TestEveryFlagHasAVariable(t *testing.T) {
	fs, _, err := parseFlags(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	fs.VisitAll(func(f *flag.Flag) {
		i++
		env := flagEnv[f.Name]
		if env == "" {
			t.Errorf("-%s has no variable", f.Name)
			return
		}
		fromEnv, fromFlag := sampleValue(f, i), sampleValue(f, i+100)
		if f.Name == "public-host" {
			fromFlag = "::1"
		}
		// TLS files come in pairs.
		getenv := func(k string) string {
			switch {
			case k == env:
				return fromEnv
			case strings.HasPrefix(env, "INGEST_TLS_") && strings.HasPrefix(k, "INGEST_TLS_"):
				return "/tmp/other.pem"
			}
			return ""
		}
		got, _, err := parseFlags(nil, getenv, io.Discard)
		if err != nil {
			t.Errorf("%s=%s: %v", env, fromEnv, err)
			return
		}
		if v := got.Lookup(f.Name).Value.String(); v != fromEnv {
			t.Errorf("%s=%s: -%s is %q", env, fromEnv, f.Name, v)
		}
		got, _, err = parseFlags([]string{"-" + f.Name, fromFlag}, getenv, io.Discard)
		if err != nil {
			t.Errorf("-%s %s: %v", f.Name, fromFlag, err)
			return
		}
		if v := got.Lookup(f.Name).Value.String(); v != fromFlag {
			t.Errorf("%s=%s and -%s %s: got %q, want the flag's", env, fromEnv, f.Name, fromFlag, v)
		}
		if !strings.Contains(f.Usage, "$"+env) {
			t.Errorf("-%s's help does not name %s: %q", f.Name, env, f.Usage)
		}
	})
}

func TestOptionsRefuseBadValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"PUBLIC_HOST": "everywhere"}, "PUBLIC_HOST must be an IP address"},
		{[]string{"-tls-cert", "c.pem"}, nil, "-tls-cert and -tls-key"},
		{[]string{"extra"}, nil, `unexpected arguments "extra"`},
		{nil, map[string]string{"KAFKA_PORT": "x"}, `KAFKA_PORT="x" (for -kafka-port)`},
	} {
		_, err := parseOptions(c.args, func(k string) string { return c.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: got %v, want an error saying %q", c.args, c.env, err, c.want)
		}
	}
}

// `make run ARGS="..."` hands ARGS to the runner.
func TestMakeRunPassesArgs(t *testing.T) {
	cmd := exec.Command("make", "-n", "run", "ARGS=-ingest-port 9999 -public-host 0.0.0.0")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "./bin/local ") {
			if !strings.HasSuffix(line, " -ingest-port 9999 -public-host 0.0.0.0") {
				t.Fatalf("the runner's command line %q does not end with ARGS", line)
			}
			return
		}
	}
	t.Fatalf("make -n run runs no ./bin/local:\n%s", out)
}
