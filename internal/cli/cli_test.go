// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"bytes"
	"net"
	"regexp"
	"strings"
	"testing"
)

// capture runs Main with stdout and stderr redirected to buffers.
func capture(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	prevOut, prevErr := stdout, stderr
	stdout, stderr = &o, &e
	t.Cleanup(func() { stdout, stderr = prevOut, prevErr })
	code = Main(args)
	return code, o.String(), e.String()
}

// Asking for help is not a usage error: scripts and `hubfleet member -h | less`
// need exit 0 and the help on stdout, with a usage line and an example to copy.
func TestEveryCommandsHelpExitsZeroWithUsageAndExamples(t *testing.T) {
	if len(commands) < 6 {
		t.Fatalf("only %d commands registered", len(commands))
	}
	for name := range commands {
		for _, flag := range []string{"-h", "--help", "-help"} {
			t.Run(name+flag, func(t *testing.T) {
				code, out, errOut := capture(t, name, flag)
				if code != ExitOK {
					t.Errorf("hubfleet %s %s exited %d, want 0 (stderr %q)", name, flag, code, errOut)
				}
				if !strings.Contains(out, "Usage: hubfleet "+name) {
					t.Errorf("help of %s has no usage line on stdout:\n%s", name, out)
				}
				_, examples, ok := strings.Cut(out, "\nExamples:\n")
				if !ok || !regexp.MustCompile(`hubfleet `+regexp.QuoteMeta(name)+`\b`).MatchString(examples) {
					t.Errorf("help of %s shows no example command:\n%s", name, out)
				}
			})
		}
	}
	code, out, _ := capture(t, "help", "member")
	if code != ExitOK || !strings.Contains(out, "Usage: hubfleet member --config FILE") {
		t.Errorf("hubfleet help member: exit %d, output %q", code, out)
	}
}

func TestBadFlagExitsTwoAndPointsAtHelp(t *testing.T) {
	for _, name := range []string{"member", "operator", "hash-password", "connect", "bridge", "version"} {
		code, out, errOut := capture(t, name, "--no-such-flag")
		if code != ExitUsage {
			t.Errorf("hubfleet %s --no-such-flag exited %d, want %d", name, code, ExitUsage)
		}
		if out != "" || !strings.Contains(errOut, "flag provided but not defined: -no-such-flag") ||
			!strings.Contains(errOut, "hubfleet "+name+" -h") {
			t.Errorf("hubfleet %s --no-such-flag printed stdout %q, stderr %q; want the error and a pointer to -h on stderr", name, out, errOut)
		}
	}
}

func TestTopLevelHelp(t *testing.T) {
	code, out, _ := capture(t, "--help")
	if code != ExitOK || !strings.Contains(out, "Usage: hubfleet <command>") || !strings.Contains(out, "hash-password") {
		t.Errorf("hubfleet --help: exit %d, output %q", code, out)
	}
	if code, _, errOut := capture(t); code != ExitUsage || !strings.Contains(errOut, "Usage:") {
		t.Errorf("hubfleet with no command: exit %d, stderr %q; want 2 and the usage", code, errOut)
	}
}

// The start-up refusal once blamed "another process using the port" for every
// listen failure; only a port in use should say so.
func TestListenFailureSaysWhatIsWrong(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ addr, want string }{
		{busy.Addr().String(), "another process is using the port"},
		{"192.0.2.1:8443", "the address is not one of this host's"}, // TEST-NET-1, on no host
		{"127.0.0.1:99999", "change listen in m.yaml"},
	} {
		ln, err := net.Listen("tcp", tc.addr)
		if err == nil {
			ln.Close()
			t.Errorf("listening on %s succeeded", tc.addr)
			continue
		}
		got := listenFix(err, "listen in m.yaml")
		if !strings.Contains(got, tc.want) {
			t.Errorf("listen on %s failed with %v; advice %q, want it to say %q", tc.addr, err, got, tc.want)
		}
		if tc.addr != busy.Addr().String() && strings.Contains(got, "another process") {
			t.Errorf("listen on %s (%v): advice %q blames another process", tc.addr, err, got)
		}
	}
}
