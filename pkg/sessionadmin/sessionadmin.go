// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package sessionadmin is the administrator's side of session listing and
// disconnection (`hubfleet sessions`, `hubfleet disconnect`;
// docs/sessions.md). It only reads and patches the VirtualHub with the
// caller's own Kubernetes credentials, so Kubernetes RBAC decides who may:
// listing needs get on virtualhubs, disconnecting patch on virtualhubs
// (the vpn.hubfleet.io/disconnect annotation), and telling whether the user
// can come back get on the hub's users Secret. The members serving the
// sessions do the rest (pkg/member/cluster/sessions.go).
package sessionadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// Get reads the hub.
func Get(ctx context.Context, c client.Reader, key types.NamespacedName) (*vpnv1alpha1.VirtualHub, error) {
	h := &vpnv1alpha1.VirtualHub{}
	if err := c.Get(ctx, key, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Resolve finds the listed sessions of h named by ids: a full id or a
// prefix of at least 6 digits naming one session.
func Resolve(h *vpnv1alpha1.VirtualHub, ids []string) ([]vpnv1alpha1.HubSession, error) {
	var out []vpnv1alpha1.HubSession
	for _, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		var hits []vpnv1alpha1.HubSession
		for _, s := range h.Status.SessionList {
			if s.ID == id || (len(id) >= 6 && strings.HasPrefix(s.ID, id)) {
				hits = append(hits, s)
			}
		}
		switch {
		case len(hits) == 0:
			return nil, fmt.Errorf("no session %q is listed on hub %s/%s (see `hubfleet sessions -n %s %s`; a reconnect is a new session with a new id)", id, h.Namespace, h.Name, h.Namespace, h.Name)
		case len(hits) > 1:
			return nil, fmt.Errorf("%q names %d sessions of hub %s/%s: give more digits", id, len(hits), h.Namespace, h.Name)
		}
		if !slices.ContainsFunc(out, func(s vpnv1alpha1.HubSession) bool { return s.ID == hits[0].ID }) {
			out = append(out, hits[0])
		}
	}
	return out, nil
}

// annotationFor is the disconnect annotation asking for ids, keeping the
// ids already asked for that are still listed (one that is not has ended,
// and a reconnect never has its id again).
func annotationFor(h *vpnv1alpha1.VirtualHub, ids []string) string {
	listed := map[string]bool{}
	for _, s := range h.Status.SessionList {
		listed[s.ID] = true
	}
	var keep []string
	for f := range strings.SplitSeq(h.Annotations[vpnv1alpha1.AnnotationDisconnect], ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" && listed[f] && !slices.Contains(keep, f) {
			keep = append(keep, f)
		}
	}
	for _, id := range ids {
		if !slices.Contains(keep, id) {
			keep = append(keep, id)
		}
	}
	sort.Strings(keep)
	return strings.Join(keep, ",")
}

// setAnnotation writes the disconnect annotation computed by value from
// the hub as read, with the hub's resourceVersion as precondition (two
// administrators disconnecting at once both get their ids in), retrying a
// conflict from a fresh read. An empty value removes the annotation.
func setAnnotation(ctx context.Context, c client.Client, key types.NamespacedName, value func(*vpnv1alpha1.VirtualHub) string) error {
	for attempt := 0; ; attempt++ {
		h, err := Get(ctx, c, key)
		if err != nil {
			return err
		}
		v := value(h)
		if h.Annotations[vpnv1alpha1.AnnotationDisconnect] == v {
			return nil
		}
		var ann any = v
		if v == "" {
			ann = nil
		}
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": h.ResourceVersion,
			"annotations":     map[string]any{vpnv1alpha1.AnnotationDisconnect: ann},
		}})
		if err != nil {
			return err
		}
		err = c.Patch(ctx, h, client.RawPatch(types.MergePatchType, body))
		if !apierrors.IsConflict(err) || attempt >= 10 {
			return err
		}
	}
}

// RequestDisconnect asks the members to end the sessions ids (full ids,
// listed on the hub) by writing them into the disconnect annotation.
func RequestDisconnect(ctx context.Context, c client.Client, key types.NamespacedName, ids []string) error {
	return setAnnotation(ctx, c, key, func(h *vpnv1alpha1.VirtualHub) string { return annotationFor(h, ids) })
}

// Prune leaves in the disconnect annotation only ids still listed, and
// removes it when none is.
func Prune(ctx context.Context, c client.Client, key types.NamespacedName) error {
	return setAnnotation(ctx, c, key, func(h *vpnv1alpha1.VirtualHub) string { return annotationFor(h, nil) })
}

// WaitGone waits until none of ids is listed on the hub (the member ended
// the session and removed its entry), polling every interval, and returns
// the ids still listed when ctx ends.
func WaitGone(ctx context.Context, c client.Reader, key types.NamespacedName, ids []string, interval time.Duration) ([]string, error) {
	for {
		h, err := Get(ctx, c, key)
		if err != nil {
			if ctx.Err() != nil {
				return ids, nil
			}
			return nil, err
		}
		var left []string
		for _, id := range ids {
			if slices.ContainsFunc(h.Status.SessionList, func(s vpnv1alpha1.HubSession) bool { return s.ID == id }) {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return left, nil
		case <-time.After(interval):
		}
	}
}

// Return says whether a disconnected user can log in again.
type Return struct {
	User   string
	Secret string // namespace/name of the hub's users Secret ("" if the hub names none)
	// Known is true when the user is still in the Secret: its client
	// reconnects at once (with its resumption ticket or password).
	Known bool
	Err   error // reading the Secret failed (forbidden, say)
}

// String is the sentence `hubfleet disconnect` prints.
func (r Return) String() string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("user %s: cannot tell whether the client will come back: reading the hub's users Secret %s: %v", r.User, r.Secret, r.Err)
	case r.Secret == "":
		return fmt.Sprintf("user %s: the hub names no users Secret, so nobody can log in: the client cannot come back", r.User)
	case r.Known:
		return fmt.Sprintf("user %s's password is still in Secret %s: the client will reconnect; remove the user from the Secret, or change the password, to keep them out (either also ends their other sessions)", r.User, r.Secret)
	}
	return fmt.Sprintf("user %s is not in Secret %s: the client cannot log in again", r.User, r.Secret)
}

// CanReturn reads the hub's users Secret for user.
func CanReturn(ctx context.Context, c client.Reader, h *vpnv1alpha1.VirtualHub, user string) Return {
	r := Return{User: user}
	if h.Spec.Users == nil || h.Spec.Users.SecretName == "" {
		return r
	}
	r.Secret = h.Namespace + "/" + h.Spec.Users.SecretName
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: h.Namespace, Name: h.Spec.Users.SecretName}, s)
	switch {
	case apierrors.IsNotFound(err):
		return r
	case err != nil:
		r.Err = err
		return r
	}
	_, r.Known = s.Data[user]
	if !r.Known {
		_, r.Known = s.StringData[user]
	}
	return r
}

// Print writes h's sessions as a table, oldest first, and a note for each
// member that listed fewer sessions than it serves.
func Print(w io.Writer, h *vpnv1alpha1.VirtualHub, now time.Time) {
	list := slices.Clone(h.Status.SessionList)
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Since.Equal(&list[j].Since) {
			return list[i].Since.Before(&list[j].Since)
		}
		return list[i].ID < list[j].ID
	})
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tKIND\tSOURCE\tMEMBER\tSINCE\tRX BYTES/FRAMES\tTX BYTES/FRAMES\tDHCP\tUPDATED")
	for _, s := range list {
		dhcp := s.DHCPAddress
		if dhcp == "" {
			dhcp = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s/%d\t%s/%d\t%s\t%s ago\n", s.ID, s.User, s.Kind, s.Source, s.Member,
			s.Since.UTC().Format(time.RFC3339), bytesIEC(s.RxBytes), s.RxFrames, bytesIEC(s.TxBytes), s.TxFrames, dhcp, age(now.Sub(s.LastUpdated.Time)))
	}
	tw.Flush()
	if len(list) == 0 {
		fmt.Fprintf(w, "no sessions listed on hub %s/%s\n", h.Namespace, h.Name)
	}
	for _, r := range h.Status.SessionReports {
		if r.Listed < r.Sessions {
			fmt.Fprintf(w, "member %s serves %d sessions of this hub and lists %d (its cap; see docs/sessions.md)\n", r.Member, r.Sessions, r.Listed)
		}
	}
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Hour).String()
}

// Explain turns an API error into a sentence naming what RBAC refused.
func Explain(err error, verb string, key types.NamespacedName) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("you may not %s VirtualHub %s: %w (ask for a Role granting it in namespace %s)", verb, key, err, key.Namespace)
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("VirtualHub %s not found: %w", key, err)
	}
	return err
}

// Disconnect is `hubfleet disconnect`: it asks for the sessions ids (full
// or unique prefixes) to end, waits up to timeout until they are no longer
// listed, tidies the annotation, and returns what to tell the user: each
// session's outcome and, per user, whether its client can come back.
func Disconnect(ctx context.Context, c client.Client, key types.NamespacedName, ids []string, timeout time.Duration) ([]string, error) {
	h, err := Get(ctx, c, key)
	if err != nil {
		return nil, Explain(err, "get", key)
	}
	sessions, err := Resolve(h, ids)
	if err != nil {
		return nil, err
	}
	full := make([]string, len(sessions))
	for i, s := range sessions {
		full[i] = s.ID
	}
	if err := RequestDisconnect(ctx, c, key, full); err != nil {
		return nil, Explain(err, "patch", key)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	left, err := WaitGone(wctx, c, key, full, 250*time.Millisecond)
	cancel()
	if err != nil {
		return nil, Explain(err, "get", key)
	}
	var out []string
	users := map[string]bool{}
	for _, s := range sessions {
		if slices.Contains(left, s.ID) {
			out = append(out, fmt.Sprintf("session %s (user %s on member %s) is still listed after %v: is member %s up? The request stays in the hub's %s annotation", s.ID, s.User, s.Member, timeout, s.Member, "vpn.hubfleet.io/disconnect"))
			continue
		}
		out = append(out, fmt.Sprintf("session %s (user %s, from %s, on member %s) disconnected", s.ID, s.User, s.Source, s.Member))
		users[s.User] = true
	}
	// The ended ids are of no use in the annotation any more.
	if err := Prune(ctx, c, key); err != nil {
		out = append(out, fmt.Sprintf("(could not tidy the disconnect annotation: %v)", err))
	}
	for _, s := range sessions {
		if users[s.User] {
			delete(users, s.User)
			out = append(out, CanReturn(ctx, c, h, s.User).String())
		}
	}
	if len(left) > 0 {
		return out, fmt.Errorf("%d of %d sessions still listed: %w", len(left), len(sessions), ErrStillListed)
	}
	return out, nil
}

// ErrStillListed is returned when sessions stay listed past the wait.
var ErrStillListed = errors.New("sessions still listed")
