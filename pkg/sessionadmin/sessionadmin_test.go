// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package sessionadmin

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

func hubWith(ann string, ids ...string) *vpnv1alpha1.VirtualHub {
	h := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "corp"}}
	if ann != "" {
		h.Annotations = map[string]string{vpnv1alpha1.AnnotationDisconnect: ann}
	}
	for _, id := range ids {
		h.Status.SessionList = append(h.Status.SessionList, vpnv1alpha1.HubSession{ID: id, User: "u" + id[:1], Member: "m"})
	}
	return h
}

// The annotation keeps earlier ids still listed, drops ended ones, adds
// the new ones once, sorted.
func TestAnnotationFor(t *testing.T) {
	h := hubWith("bbbbbb, gone ,aaaaaa", "aaaaaa", "bbbbbb", "cccccc")
	if got := annotationFor(h, []string{"cccccc", "aaaaaa"}); got != "aaaaaa,bbbbbb,cccccc" {
		t.Errorf("got %q", got)
	}
	if got := annotationFor(hubWith("gone"), nil); got != "" {
		t.Errorf("prune of ended ids: %q", got)
	}
}

func TestResolve(t *testing.T) {
	h := hubWith("", "abcdef01", "abcdef02", "123456ff")
	got, err := Resolve(h, []string{"123456", "ABCDEF01", "123456ff"})
	if err != nil || len(got) != 2 || got[0].ID != "123456ff" || got[1].ID != "abcdef01" {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := Resolve(h, []string{"abcdef"}); err == nil || !strings.Contains(err.Error(), "names 2 sessions") {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := Resolve(h, []string{"abc"}); err == nil || !strings.Contains(err.Error(), "no session") {
		t.Errorf("short prefix: %v", err)
	}
}

func TestReturnSays(t *testing.T) {
	for _, tc := range []struct {
		r    Return
		want string
	}{
		{Return{User: "alice", Secret: "t/users", Known: true}, "user alice's password is still in Secret t/users: the client will reconnect; remove the user from the Secret, or change the password, to keep them out"},
		{Return{User: "alice", Secret: "t/users"}, "user alice is not in Secret t/users: the client cannot log in again"},
		{Return{User: "alice", Secret: "t/users", Err: errors.New("forbidden")}, "cannot tell whether the client will come back"},
	} {
		if got := tc.r.String(); !strings.Contains(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestPrintNotesCap(t *testing.T) {
	h := hubWith("", "aaaaaa")
	h.Status.SessionList[0].RxBytes = 3 << 20
	h.Status.SessionReports = []vpnv1alpha1.SessionReport{{Member: "m", Sessions: 600, Listed: 500}}
	var b strings.Builder
	Print(&b, h, time.Now())
	if !strings.Contains(b.String(), "3.0MiB/0") || !strings.Contains(b.String(), "member m serves 600 sessions of this hub and lists 500") {
		t.Errorf("printed:\n%s", b.String())
	}
}
