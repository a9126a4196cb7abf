// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/hubfleet/hubfleet/pkg/auth"
)

func init() {
	Register(Command{Name: "hash-password", Summary: "print the argon2id hash of a password, for a VirtualHub users Secret", Run: runHashPassword})
}

func runHashPassword(args []string) int {
	fs := newFlagSet("hash-password", Help{
		Usage: "hubfleet hash-password < password-file",
		About: fmt.Sprintf("Reads a password (prompting twice, without echo, on a terminal; else the first\n"+
			"line of stdin) and prints its argon2id PHC string (m=%d KiB, t=%d, p=%d), the\n"+
			"value of a user's key in a VirtualHub users Secret.", auth.DefaultParams.Memory, auth.DefaultParams.Time, auth.DefaultParams.Threads),
		Examples: []string{
			"hubfleet hash-password   # prompts for the password twice",
			"printf %s \"$PW\" | hubfleet hash-password",
			"kubectl create secret generic blue-users --from-literal=alice=\"$(hubfleet hash-password < alice.pw)\"",
		},
	})
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hubfleet hash-password: takes no arguments: the password is read from stdin so it stays out of the shell history and process list")
		return ExitUsage
	}
	password, err := readNewPassword(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet hash-password: %v\n", err)
		return ExitError
	}
	h, err := auth.HashPassword(password)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubfleet hash-password: %v\n", err)
		return ExitError
	}
	fmt.Println(h)
	return ExitOK
}

func readNewPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		// Piped: the first line, without its line ending, so `echo pw |` works.
		line, err := bufio.NewReader(in).ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			return "", errors.New("stdin held no password: pipe one in, e.g. `printf %s \"$PW\" | hubfleet hash-password`")
		}
		return string(line), nil
	}
	fmt.Fprint(prompt, "Password: ")
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	fmt.Fprint(prompt, "Again: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if !bytes.Equal(first, second) {
		return "", errors.New("the two passwords differ: run it again")
	}
	if len(first) == 0 {
		return "", auth.ErrEmptyPassword
	}
	return string(first), nil
}
