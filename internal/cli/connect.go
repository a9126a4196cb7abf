// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/hubfleet/hubfleet/pkg/client"
	"github.com/hubfleet/hubfleet/pkg/sessionkind"
	"github.com/hubfleet/hubfleet/pkg/version"
)

// Exit codes of connect and bridge, documented in docs/client.md. They are
// fixed numbers a script can test, so never renumber them.
const (
	ExitBadCredentials = 3
	ExitUnknownHub     = 4
	ExitTLS            = 5
	ExitTAP            = 6
	ExitLicense        = 7
)

func init() {
	Register(Command{Name: "connect", Summary: "join this host to a hub through a TAP device (VPN client)",
		Run: func(args []string) int { return runVPN("connect", sessionkind.Client, args) }})
}

// vpnFlags are the flags connect and bridge share.
type vpnFlags struct {
	opts         client.Options
	passwordFile string
	verbose      bool
	log          *logFlags
	offload      bool
	dhcp         optBool // connect only; default: on without --address
	udp          bool
	handoff      bool
}

func newVPNFlags(cmd string, kind sessionkind.Kind) (*flag.FlagSet, *vpnFlags) {
	v := &vpnFlags{opts: client.Options{Kind: kind}}
	fs := newFlagSet(cmd, vpnHelp(cmd, kind))
	o := &v.opts
	fs.StringVar(&o.Server, "server", "", "cluster address `host:port` (the VPNCluster Service)")
	fs.StringVar(&o.Hub, "hub", "", "VirtualHub to join")
	fs.StringVar(&o.User, "user", "", "user name")
	fs.StringVar(&v.passwordFile, "password-file", "", "file holding the password (first line); else the HUBFLEET_PASSWORD environment variable")
	fs.StringVar(&o.CAFile, "ca-file", "", "cluster CA certificate, PEM (ca.crt of the cluster's TLS Secret)")
	fs.StringVar(&o.CAFingerprint, "ca-fingerprint", "", "SHA-256 fingerprint (hex) of the cluster CA or member certificate, instead of --ca-file")
	fs.StringVar(&o.ServerName, "server-name", "", "name the member certificate must carry (default: any certificate of the trusted CA)")
	fs.StringVar(&o.TAPName, "tap", "", "TAP device name (default: the kernel picks tapN)")
	fs.StringVar(&o.Address, "address", "", "address to assign to the TAP device, CIDR (such as 172.31.0.1/24)")
	if kind == sessionkind.Client {
		fs.Var(&v.dhcp, "dhcp", "obtain the TAP's address from the hub's DHCP server, renew it and release it on exit (default: on when no --address is given)")
	}
	fs.IntVar(&o.MTU, "mtu", 0, "TAP device MTU (default: the kernel's 1500)")
	fs.BoolVar(&o.NoRetry, "no-retry", false, "exit on the first failure instead of reconnecting (exit code says why)")
	fs.BoolVar(&v.offload, "offload", true, "segmentation offload on the TAP: 64 KiB super-frames travel whole to members and clients that accept them (--offload=false: MTU-sized frames only)")
	fs.BoolVar(&v.handoff, "handoff", true, "when the member the connection reaches relays the session to the member that holds the hub, let that member take the session's TLS over, so the first one only copies bytes (--handoff=false: it decrypts and re-encrypts every frame, as before)")
	fs.BoolVar(&v.udp, "udp", false, "also offer the UDP data channel: frames go as UDP datagrams (keys from the TLS session) while the UDP path works, over TLS otherwise. Level with TLS on an Internet path and up to 1.2x ahead of it under loss; off by default because on a LAN with jumbo frames or to a member on the same host TLS is quicker (it carries 64 KiB super-frames whole, a datagram at most 9 KiB)")
	// The client is quiet unless something goes wrong: its status lines
	// (not the log) tell a user what it is doing.
	v.log = addLogFlags(fs, "warn")
	fs.BoolVar(&v.verbose, "v", false, "log session details (--log-level debug)")
	return fs, v
}

func vpnHelp(cmd string, kind sessionkind.Kind) Help {
	if kind == sessionkind.Bridge {
		return Help{
			Usage: "hubfleet bridge --server HOST:PORT --hub HUB --user USER --bridge BRIDGE (--ca-file FILE | --ca-fingerprint SHA256) [flags]",
			About: "Joins a local Linux bridge (or a plain interface) to a Virtual Hub, so the\n" +
				"hub and the LAN are one Ethernet segment. Uses a bridge license. The password\n" +
				"comes from --password-file or HUBFLEET_PASSWORD. Exit codes: docs/client.md.",
			Examples: []string{
				"sudo HUBFLEET_PASSWORD=... hubfleet bridge --server vpn.example.com:8443 --hub blue --user site-a \\\n    --ca-file ca.crt --bridge br0",
				"sudo hubfleet bridge --server 10.0.0.5:8443 --hub blue --user site-a --password-file pw \\\n    --ca-fingerprint 3f:9a:... --bridge eth1   # creates hfbr-eth1",
			},
		}
	}
	return Help{
		Usage: "hubfleet connect --server HOST:PORT --hub HUB --user USER (--ca-file FILE | --ca-fingerprint SHA256) [flags]",
		About: "Joins this host to a Virtual Hub through a TAP device, reconnecting until\n" +
			"interrupted (or, with --no-retry, exiting on the first failure). Uses a client\n" +
			"license. The password comes from --password-file or HUBFLEET_PASSWORD.\n" +
			"Exit codes: docs/client.md.",
		Examples: []string{
			"sudo hubfleet connect --server vpn.example.com:8443 --hub blue --user alice \\\n    --password-file ~/.hubfleet-pw --ca-file ca.crt --address 172.31.0.10/24",
			"sudo HUBFLEET_PASSWORD=... hubfleet connect --server 10.0.0.5:8443 --hub blue --user alice \\\n    --ca-fingerprint 3f:9a:... --no-retry   # a script: the exit code says why it failed",
		},
	}
}

func runVPN(cmd string, kind sessionkind.Kind, args []string) int {
	fs, v := newVPNFlags(cmd, kind)
	if kind == sessionkind.Bridge {
		fs.StringVar(&v.opts.Bridge, "bridge", "", "Linux bridge to join, or a plain interface to bridge with (a bridge hfbr-IFACE is created)")
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "hubfleet %s: unexpected arguments %q; all settings are flags (-h lists them)\n", cmd, fs.Args())
		return ExitUsage
	}
	pw, err := readPassword(v.passwordFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet %s: %v\n", cmd, err)
		return ExitUsage
	}
	v.opts.Password = pw
	if v.verbose {
		v.log.level = "debug"
	}
	if v.opts.Logger, err = v.log.logger(os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet %s: %v\n", cmd, err)
		return ExitUsage
	}
	v.opts.Status = prefixWriter{w: os.Stderr, prefix: "hubfleet " + cmd + ": "}
	v.opts.ClientName = fmt.Sprintf("hubfleet-%s/%s %s/%s", cmd, version.Version, runtime.GOOS, runtime.GOARCH)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v.opts.NoOffload = !v.offload
	if v.opts.DHCP, err = v.dhcp.resolve(kind, v.opts.Address); err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet %s: %v\n", cmd, err)
		return ExitUsage
	}
	v.opts.NoUDP = !v.udp
	v.opts.NoHandoff = !v.handoff
	err = client.Run(ctx, v.opts)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(os.Stderr, "hubfleet %s: %v\n", cmd, err)
	return exitCode(err)
}

func exitCode(err error) int {
	ce, ok := errors.AsType[*client.Error](err)
	if !ok {
		return ExitError
	}
	switch ce.Reason {
	case client.ReasonConfig:
		return ExitUsage
	case client.ReasonBadCredentials:
		return ExitBadCredentials
	case client.ReasonUnknownHub:
		return ExitUnknownHub
	case client.ReasonTLS:
		return ExitTLS
	case client.ReasonTAP:
		return ExitTAP
	case client.ReasonLicense:
		return ExitLicense
	}
	return ExitError
}

// readPassword takes the password from a file or HUBFLEET_PASSWORD. There is no
// --password flag: a command line is visible to every user in ps.
func readPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimSuffix(pw, "\r")
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty: put the password on its first line", file)
		}
		return pw, nil
	}
	if pw := os.Getenv("HUBFLEET_PASSWORD"); pw != "" {
		return pw, nil
	}
	return "", errors.New("no password: give --password-file FILE or set HUBFLEET_PASSWORD")
}

// prefixWriter prefixes each status line with the command, so it reads on a
// terminal shared with other output.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
