// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package e2e

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// output collects a client's status lines, remembering when each arrived, so
// tests can ask how long the current session has lasted.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	lines   []timedLine
}

type timedLine struct {
	at   time.Time
	text string
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	now := time.Now()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.lines = append(o.lines, timedLine{at: now, text: string(o.partial[:i])})
		o.partial = o.partial[i+1:]
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// lastLine returns the last complete line containing substr and when it came.
func (o *output) lastLine(substr string) (timedLine, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.lines) - 1; i >= 0; i-- {
		if strings.Contains(o.lines[i].text, substr) {
			return o.lines[i], true
		}
	}
	return timedLine{}, false
}
