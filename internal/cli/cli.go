// Package cli dispatches hubfleet's subcommands. Each subcommand lives in its own file
// and registers itself in init, so adding one never touches a shared switch.
package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
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

// Main runs the subcommand named by args[0].
func Main(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(os.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "hubfleet: unknown command %q; run `hubfleet help` for the list\n", args[0])
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
	fmt.Fprintln(w, "\nRun `hubfleet <command> -h` for a command's flags.")
}
