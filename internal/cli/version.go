package cli

import (
	"fmt"
	"runtime"

	"github.com/hubfleet/hubfleet/pkg/version"
)

func init() {
	Register(Command{Name: "version", Summary: "print the version", Run: func([]string) int {
		fmt.Printf("hubfleet %s (commit %s, %s)\n", version.Version, version.Commit, runtime.Version())
		return ExitOK
	}})
}
