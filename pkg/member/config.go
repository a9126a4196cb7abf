package member

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/pkg/auth"
)

// Config is the member's file configuration (YAML or JSON; docs/member-config.md
// has an example). In cluster mode the same struct is built from Kubernetes
// objects and handed to Server.Apply, so nothing in it refers to how it was read.
type Config struct {
	Listen   string `json:"listen"`   // default ":8443"
	CertFile string `json:"certFile"` // PEM serving certificate (leaf first, then the CA) — required
	KeyFile  string `json:"keyFile"`  // PEM private key of CertFile — required
	// CAFile is the PEM CA that issued CertFile. Its certificates are sent after the
	// chain when CertFile lacks them, so a client that pins the cluster CA by
	// fingerprint (`hubfleet connect --ca-fingerprint`) finds it: Kubernetes TLS
	// Secrets usually hold the CA apart, in ca.crt.
	CAFile string `json:"caFile,omitempty"`
	// TicketKeyFile holds the cluster's resumption-ticket key: 32 raw bytes or 64 hex
	// digits. Empty means a random key, so tickets only resume on this process.
	TicketKeyFile string `json:"ticketKeyFile,omitempty"`
	// Name is the member's name in logs and refusal messages; default the hostname.
	Name              string      `json:"name,omitempty"`
	KeepaliveInterval Duration    `json:"keepaliveInterval,omitempty"` // default 1s
	DeadTimeout       Duration    `json:"deadTimeout,omitempty"`       // default 3s
	Licences          *Licences   `json:"licences,omitempty"`          // nil = unlimited
	Hubs              []HubConfig `json:"hubs"`
}

// Licences is the member's connection-licence allocation. A negative value means
// unlimited for that kind; zero admits no session of that kind.
type Licences struct {
	Client int `json:"client"`
	Bridge int `json:"bridge"`
}

// HubConfig is one Virtual Hub served by the member.
type HubConfig struct {
	Name        string `json:"name"`
	Type        string `json:"type"`                  // "Static" | "Dynamic"
	MaxSessions int    `json:"maxSessions,omitempty"` // 0 = unlimited
	// Users maps a user name to its argon2id PHC hash (`hubfleet hash-password`).
	Users            map[string]string `json:"users"`
	MACAgeingSeconds int               `json:"macAgeingSeconds,omitempty"` // default 600
	MaxMACs          int               `json:"maxMACs,omitempty"`          // default 65536
}

// Hub types. On one member they behave alike; the operator places them differently.
const (
	HubStatic  = "Static"
	HubDynamic = "Dynamic"
)

// Defaults applied by LoadConfig and Validate.
const (
	DefaultListen            = ":8443"
	DefaultKeepaliveInterval = time.Second
	DefaultDeadTimeout       = 3 * time.Second
)

// Duration is a time.Duration written as a Go duration string ("1s", "250ms"); a
// bare number is read as seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1s" or 1 (seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: write it like 1s, 500ms or 2m", s)
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: write it like 1s, 500ms or 2m", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// LoadConfig reads a member configuration file, applies defaults and validates it.
// Relative certificate, key and ticket-key paths are taken relative to the file's
// directory, so a config and its files can move together. Errors name the field
// and say how to fix it.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading member config: %w", err)
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return nil, fmt.Errorf("member config %s: %w", path, err)
	}
	var cfg Config
	// Strict and case-sensitive, as Kubernetes decodes objects: a misspelt field
	// ("certfile") must fail, not silently take a default.
	strict, err := kjson.UnmarshalStrict(js, &cfg)
	if err == nil {
		err = errors.Join(strict...)
	}
	if err != nil {
		return nil, fmt.Errorf("member config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&cfg.CertFile, &cfg.KeyFile, &cfg.CAFile, &cfg.TicketKeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("member config %s: %w", path, err)
	}
	if _, err := cfg.loadFiles(); err != nil {
		return nil, fmt.Errorf("member config %s: %w", path, err)
	}
	return &cfg, nil
}

// Validate applies defaults in place and checks every field except the contents of
// the files it names (New and Apply read those).
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
		if c.Name == "" {
			c.Name = "member"
		}
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = Duration(DefaultKeepaliveInterval)
	}
	if c.DeadTimeout == 0 {
		c.DeadTimeout = Duration(max(DefaultDeadTimeout, 3*c.KeepaliveInterval.D()))
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.CertFile == "" {
		fail("certFile is empty: give the PEM serving certificate (tls.crt of the cluster's member Secret)")
	}
	if c.KeyFile == "" {
		fail("keyFile is empty: give the PEM private key of certFile (tls.key)")
	}
	if c.KeepaliveInterval.D() < time.Millisecond {
		fail("keepaliveInterval %v is under 1ms: use e.g. 1s", c.KeepaliveInterval.D())
	}
	if c.DeadTimeout.D() <= c.KeepaliveInterval.D() {
		fail("deadTimeout %v must be longer than keepaliveInterval %v: use about three intervals", c.DeadTimeout.D(), c.KeepaliveInterval.D())
	}
	if len(c.Name) > auth.MaxTicketName {
		fail("name is %d bytes long: the limit is %d", len(c.Name), auth.MaxTicketName)
	}
	seen := map[string]bool{}
	for i := range c.Hubs {
		h := &c.Hubs[i]
		where := fmt.Sprintf("hubs[%d]", i)
		if h.Name != "" {
			where = fmt.Sprintf("hubs[%d] (%q)", i, h.Name)
		}
		switch {
		case h.Name == "":
			fail("%s: name is empty: every hub needs the name clients log in to", where)
		case len(h.Name) > auth.MaxTicketName:
			fail("%s: name is %d bytes long: the limit is %d", where, len(h.Name), auth.MaxTicketName)
		case seen[h.Name]:
			fail("%s: hub name listed twice: hub names must be unique", where)
		}
		seen[h.Name] = true
		if h.Type != HubStatic && h.Type != HubDynamic {
			fail("%s: type %q is not a hub type: use %q or %q", where, h.Type, HubStatic, HubDynamic)
		}
		if h.MaxSessions < 0 {
			fail("%s: maxSessions %d is negative: use 0 for unlimited", where, h.MaxSessions)
		}
		if h.MACAgeingSeconds < 0 || h.MaxMACs < 0 {
			fail("%s: macAgeingSeconds and maxMACs must not be negative (0 means the default)", where)
		}
		for user, phc := range h.Users {
			if user == "" || len(user) > auth.MaxTicketName {
				fail("%s: user name %q must be 1..%d bytes", where, user, auth.MaxTicketName)
			}
			if _, err := auth.ParseHash(phc); err != nil {
				fail("%s: users[%q]: %v", where, user, err)
			}
		}
	}
	return errors.Join(errs...)
}

// material is what the files named by a Config hold.
type material struct {
	cert      tls.Certificate
	ticketKey *auth.TicketKey // nil: keep or make a random key
}

func (c *Config) loadFiles() (*material, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("certFile %s / keyFile %s: %w: give a PEM certificate and its matching PEM key", c.CertFile, c.KeyFile, err)
	}
	if c.CAFile != "" {
		if err := appendCA(&cert, c.CAFile); err != nil {
			return nil, err
		}
	}
	m := &material{cert: cert}
	if c.TicketKeyFile != "" {
		k, err := readTicketKey(c.TicketKeyFile)
		if err != nil {
			return nil, err
		}
		m.ticketKey = &k
	}
	return m, nil
}

// appendCA adds the certificates of the PEM file at path to the end of cert's chain,
// skipping any the chain already carries.
func appendCA(cert *tls.Certificate, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("caFile: %w", err)
	}
	added := 0
	for block, rest := pem.Decode(raw); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("caFile %s: %w: give the PEM CA certificate (ca.crt of the cluster's TLS Secret)", path, err)
		}
		added++
		if !slices.ContainsFunc(cert.Certificate, func(der []byte) bool { return bytes.Equal(der, block.Bytes) }) {
			cert.Certificate = append(cert.Certificate, block.Bytes)
		}
	}
	if added == 0 {
		return fmt.Errorf("caFile %s holds no PEM certificate: give the CA certificate (ca.crt of the cluster's TLS Secret)", path)
	}
	return nil
}

func readTicketKey(path string) (auth.TicketKey, error) {
	var k auth.TicketKey
	raw, err := os.ReadFile(path)
	if err != nil {
		return k, fmt.Errorf("ticketKeyFile: %w", err)
	}
	if len(raw) == len(k) {
		copy(k[:], raw)
		return k, nil
	}
	s := string(bytes.TrimSpace(raw))
	if b, err := hex.DecodeString(s); err == nil && len(b) == len(k) {
		copy(k[:], b)
		return k, nil
	}
	return k, fmt.Errorf("ticketKeyFile %s holds %d bytes, neither 32 raw bytes nor 64 hex digits: make one with `head -c 32 /dev/urandom > %s` and give every member the same file", path, len(raw), filepath.Base(path))
}
