// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

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
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/acl"
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
	// UDPListen is the UDP data channel's address (docs/member-config.md):
	// empty means the listen address (the same port number, UDP), "off" no
	// UDP channel (every session stays on TLS).
	UDPListen string `json:"udpListen,omitempty"`
	// Name is the member's name in logs and refusal messages; default the hostname.
	Name              string   `json:"name,omitempty"`
	KeepaliveInterval Duration `json:"keepaliveInterval,omitempty"` // default 1s
	DeadTimeout       Duration `json:"deadTimeout,omitempty"`       // default 3s
	// Licenses is the member's license allocation (the old spelling of the
	// key, "licences", is read for one release: see LoadConfig).
	Licenses *Licenses   `json:"licenses,omitempty"` // nil = unlimited
	Hubs     []HubConfig `json:"hubs"`
}

// Licenses is the member's connection-license allocation. A negative value means
// unlimited for that kind; zero admits no session of that kind.
type Licenses struct {
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
	// AccessList and AccessListDefault filter the frames each session sends
	// into the hub, with the rules and meaning of VirtualHub.spec.accessList
	// (docs/access-lists.md); cluster mode copies them from the VirtualHub.
	AccessList        []v1alpha1.AccessRule `json:"accessList,omitempty"`
	AccessListDefault v1alpha1.AccessAction `json:"accessListDefault,omitempty"`
	// DHCP runs a DHCP server on the hub, with the fields and meaning of
	// VirtualHub.spec.dhcp (docs/member-config.md); cluster mode copies it
	// from the VirtualHub of a Dynamic hub.
	DHCP *v1alpha1.DHCPSpec `json:"dhcp,omitempty"`
	// UserLimits limits each user's sessions on the hub and each session's
	// rate, with the fields and meaning of VirtualHub.spec.userLimits
	// (docs/member-config.md); cluster mode copies it from the VirtualHub.
	UserLimits *v1alpha1.UserLimitsSpec `json:"userLimits,omitempty"`
}

// accessList compiles the hub's access list (a Program that filters nothing
// when the hub has none).
func (h *HubConfig) accessList() (*acl.Program, error) {
	return acl.CompileSpec(&v1alpha1.VirtualHubSpec{AccessList: h.AccessList, AccessListDefault: h.AccessListDefault})
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
// and say how to fix it. A key of the old spelling (deprecatedKeys) is read as
// its new one, with a warning on log (nil: none).
func LoadConfig(path string, log *slog.Logger) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading member config: %w", err)
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return nil, fmt.Errorf("member config %s: %w", path, err)
	}
	js, renamed, err := renameDeprecatedKeys(js)
	if err != nil {
		return nil, fmt.Errorf("member config %s: %w", path, err)
	}
	for _, k := range renamed {
		if log != nil {
			log.Warn("member config uses a deprecated key: rename it, the old spelling is read for one more release only",
				"file", path, "key", k, "use", deprecatedKeys[k])
		}
	}
	var cfg Config
	if err := decodeConfig(js, &cfg); err != nil {
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
	if err := checkListen(c.Listen); err != nil {
		fail("listen %q: %v", c.Listen, err)
	}
	if c.UDPListen != "" && c.UDPListen != UDPOff {
		if err := checkListen(c.UDPListen); err != nil {
			fail("udpListen %q: %v (or \"off\")", c.UDPListen, err)
		}
	}
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
	first := map[string]int{}
	for i := range c.Hubs {
		h := &c.Hubs[i]
		at := fmt.Sprintf("hubs[%d]", i)
		// The hub's name follows the path: in a long list the index alone is
		// hard to find, and the name is what the administrator knows the hub by.
		of := ""
		if h.Name != "" {
			of = fmt.Sprintf(" (hub %q)", h.Name)
		}
		prev, dup := first[h.Name]
		switch {
		case h.Name == "":
			fail("%s.name is empty: every hub needs the name clients log in to", at)
		case len(h.Name) > auth.MaxTicketName:
			fail("%s.name is %d bytes long: the limit is %d%s", at, len(h.Name), auth.MaxTicketName, of)
		case dup:
			fail("%s.name %q is listed twice (also hubs[%d]): hub names must be unique", at, h.Name, prev)
		default:
			first[h.Name] = i
		}
		if h.Type != HubStatic && h.Type != HubDynamic {
			fail("%s.type %q is not a hub type: use %q or %q%s", at, h.Type, HubStatic, HubDynamic, of)
		}
		if h.MaxSessions < 0 {
			fail("%s.maxSessions %d is negative: use 0 for unlimited%s", at, h.MaxSessions, of)
		}
		if h.MACAgeingSeconds < 0 {
			fail("%s.macAgeingSeconds %d is negative: use 0 for the default (600)%s", at, h.MACAgeingSeconds, of)
		}
		if h.MaxMACs < 0 {
			fail("%s.maxMACs %d is negative: use 0 for the default (65536)%s", at, h.MaxMACs, of)
		}
		if _, err := h.accessList(); err != nil {
			fail("%s.accessList: %v%s", at, err, of)
		}
		if _, _, err := UserLimitSettings(h.UserLimits); err != nil {
			for _, e := range unjoin(err) {
				fail("%s.userLimits.%v%s", at, e, of)
			}
		}
		if _, err := h.dhcpConfig(); err != nil {
			// Each of the pool's errors names its field; the path goes in front
			// of every one, so a list of mistakes reads as a list.
			for _, e := range unjoin(err) {
				fail("%s.dhcp.%v%s", at, e, of)
			}
		}
		for _, user := range slices.Sorted(maps.Keys(h.Users)) {
			if user == "" || len(user) > auth.MaxTicketName {
				fail("%s.users: user name %q must be 1..%d bytes%s", at, user, auth.MaxTicketName, of)
			}
			if _, err := auth.ParseHash(h.Users[user]); err != nil {
				fail("%s.users[%q]: %v%s", at, user, err, of)
			}
		}
	}
	return errors.Join(errs...)
}

// checkListen checks a listen address as net.Listen("tcp", addr) will read it,
// without binding: a reload must refuse what the next start would refuse.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port (%v): write it like :8443 or 0.0.0.0:8443", err)
	}
	if n, err := strconv.ParseUint(port, 10, 64); err == nil {
		if n > 65535 {
			return fmt.Errorf("port %d is out of range: a TCP port is at most 65535; write it like :8443", n)
		}
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q is neither a number nor a known service name: write it like :8443", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q is not an IP address or host name: write it like 0.0.0.0:8443, [::]:8443 or :8443 for every address", host)
	}
	return nil
}

// deprecatedKeys maps each top-level key of an earlier release's spelling to
// its key now. LoadConfig reads the old one, with a warning, for one release
// (issue #16: one spelling, "license", as in the ConnectionLicense kind).
var deprecatedKeys = map[string]string{
	"licences": "licenses",
}

// renameDeprecatedKeys returns js with each deprecated top-level key renamed
// to its new spelling, and the old keys it found (sorted). A file that gives
// both spellings of one key is refused. js that is not a JSON object is
// returned as it is, for decodeConfig to refuse.
func renameDeprecatedKeys(js []byte) ([]byte, []string, error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(js, &top) != nil {
		return js, nil, nil
	}
	var renamed []string
	for _, old := range slices.Sorted(maps.Keys(deprecatedKeys)) {
		v, ok := top[old]
		if !ok {
			continue
		}
		now := deprecatedKeys[old]
		if _, both := top[now]; both {
			return nil, nil, fmt.Errorf("%s and %s are both given: they are one setting (%s is its old spelling, read for one more release); keep %s only", now, old, old, now)
		}
		delete(top, old)
		top[now] = v
		renamed = append(renamed, old)
	}
	if len(renamed) == 0 {
		return js, nil, nil
	}
	out, err := json.Marshal(top)
	return out, renamed, err
}

// decodeConfig decodes the JSON form of a config file strictly and
// case-sensitively, as Kubernetes decodes objects: a misspelt field ("certfile")
// must fail, not silently take a default. The decoder's own errors name neither
// a list index nor the field a custom type (Duration) failed in, so on failure
// each value is decoded again on its own to say which one is wrong.
func decodeConfig(js []byte, cfg *Config) error {
	strict, err := kjson.UnmarshalStrict(js, cfg)
	if err != nil {
		if located := locate(js, reflect.TypeFor[Config](), ""); located != nil {
			return located
		}
		return err
	}
	errs := make([]error, len(strict))
	for i, e := range strict {
		errs[i] = explainStrict(e)
	}
	return errors.Join(errs...)
}

// locate returns an error for each value in raw, a JSON encoding of a t,
// that does not decode, naming its path (hubs[2].maxSessions) and how to write it.
func locate(raw []byte, t reflect.Type, path string) error {
	if string(raw) == "null" {
		return nil
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
			return fmt.Errorf("%s: %w", path, err) // a custom type says how to write it itself
		}
		return nil
	}
	var errs []error
	switch t.Kind() {
	case reflect.Pointer:
		return locate(raw, t.Elem(), path)
	case reflect.Struct:
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return wrongType(path, raw, "a mapping of fields", "key: value lines under it")
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if v, ok := fields[name]; ok && name != "" {
				p := name
				if path != "" {
					p = path + "." + name
				}
				errs = append(errs, locate(v, f.Type, p))
			}
		}
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return wrongType(path, raw, "a list", `"- " lines under it, or [] for none`)
		}
		for i, v := range items {
			errs = append(errs, locate(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i)))
		}
	case reflect.Map:
		var entries map[string]json.RawMessage
		if json.Unmarshal(raw, &entries) != nil {
			return wrongType(path, raw, "a mapping", "key: value lines under it, or {} for none")
		}
		for _, k := range slices.Sorted(maps.Keys(entries)) {
			errs = append(errs, locate(entries[k], t.Elem(), fmt.Sprintf("%s[%q]", path, k)))
		}
	default:
		if json.Unmarshal(raw, reflect.New(t).Interface()) == nil {
			return nil
		}
		switch t.Kind() {
		case reflect.String:
			return wrongType(path, raw, "text", `quotes around it, like "value"`)
		case reflect.Bool:
			return wrongType(path, raw, "true or false", "true or false")
		default:
			return wrongType(path, raw, "a whole number", "digits, like 10")
		}
	}
	return errors.Join(errs...)
}

func wrongType(path string, raw []byte, want, how string) error {
	v := string(raw)
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return fmt.Errorf("%s: %s is not %s: write %s", path, v, want, how)
}

// explainStrict adds the fix to an unknown-field error of the strict decoder
// ("unknown field \"hubs[0].maxsessions\""): the field it was likely meant to be.
func explainStrict(err error) error {
	msg := err.Error()
	_, quoted, ok := strings.Cut(msg, "unknown field ")
	if !ok {
		return err
	}
	path, uerr := strconv.Unquote(quoted)
	if uerr != nil {
		return err
	}
	last := path[strings.LastIndexAny(path, ".]")+1:]
	for _, known := range configFieldNames() {
		if strings.EqualFold(known, last) {
			return fmt.Errorf("%s: did you mean %q? field names are case-sensitive", msg, known)
		}
	}
	return fmt.Errorf("%s: remove it, or see docs/member-config.md for the fields a member config has", msg)
}

// configFieldNames lists the JSON names of every field of a Config, nested
// ones included.
func configFieldNames() []string {
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" {
				names = append(names, name)
				walk(t.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	return names
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
