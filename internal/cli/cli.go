// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package cli dispatches hubfleet's subcommands. Each subcommand lives in its own file
// and registers itself in init, so adding one never touches a shared switch.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// Command is one `hubfleet <name>` subcommand.
type Command struct {
	Name    string
	Summary string
	// Run gets the arguments after the subcommand name and returns the process exit code.
	Run func(args []string) int
}

var commands = map[string]Command{}

// Register adds a subcommand; it panics on a duplicate name, which is a programming error.
func Register(c Command) {
	if _, dup := commands[c.Name]; dup {
		panic("cli: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// Exit codes shared by every subcommand; connect and bridge add 3–7 (docs/client.md).
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// stdout and stderr are variables so tests can read what a command printed.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// Main runs the subcommand named by args[0].
func Main(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) == 0 {
			usage(stderr)
			return ExitUsage
		}
		if len(args) > 1 && args[0] == "help" {
			// `hubfleet help member` is `hubfleet member -h`.
			if c, ok := commands[args[1]]; ok {
				return c.Run([]string{"-h"})
			}
			fmt.Fprintf(stderr, "hubfleet: unknown command %q; run `hubfleet help` for the list\n", args[1])
			return ExitUsage
		}
		usage(stdout)
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hubfleet: unknown command %q; run `hubfleet help` for the list\n", args[0])
		return ExitUsage
	}
	return c.Run(args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "hubfleet — a clustered Layer-2 VPN on Kubernetes\n\nUsage: hubfleet <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, commands[n].Summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun `hubfleet <command> -h` for a command's usage, examples and flags.")
}

// Help is what `hubfleet <command> -h` prints above the flags.
type Help struct {
	Usage    string   // the synopsis after "Usage: ", such as "hubfleet member --config FILE"
	About    string   // what the command does, a few lines
	Examples []string // command lines, each optionally followed by "  # comment" lines
}

// newFlagSet returns the flag set of a command whose -h prints h, then the flags.
func newFlagSet(name string, h Help) *flag.FlagSet {
	fs := flag.NewFlagSet("hubfleet "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printHelp(fs, h) }
	return fs
}

func printHelp(fs *flag.FlagSet, h Help) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: %s\n", h.Usage)
	if h.About != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(h.About, "\n"))
	}
	if len(h.Examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range h.Examples {
			for _, line := range strings.Split(e, "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
}

// parseFlags parses args into fs. A request for help prints the help to stdout
// and ends the command with ExitOK: asking for help is not a mistake, and a
// script or pager reads stdout. Any other parse error (already printed by the
// flag package, with the help) ends it with ExitUsage.
func parseFlags(fs *flag.FlagSet, args []string) (exit int, done bool) {
	usageFn := fs.Usage
	// The flag package prints the help on -h and after a bad flag; the help goes
	// to stdout only when it was asked for, so hold it back until the outcome is known.
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usageFn
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		out := fs.Output()
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(out)
		return ExitOK, true
	default:
		fmt.Fprintf(fs.Output(), "Run `%s -h` for usage and examples.\n", fs.Name())
		return ExitUsage, true
	}
}
