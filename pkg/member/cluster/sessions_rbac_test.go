// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/internal/scheme"
	"github.com/hubfleet/hubfleet/pkg/member"
	"github.com/hubfleet/hubfleet/pkg/sessionadmin"
)

// tenantClient is a client acting as user "someone" in group, with
// Role role bound to group in ns (rules as config/samples/hosting's).
func tenantClient(t *testing.T, ns, group string, rules []rbacv1.PolicyRule) client.Client {
	t.Helper()
	create(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: group}, Rules: rules})
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: group},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: group},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: group}},
	})
	rc := rest.CopyConfig(env.Config)
	rc.Impersonate = rest.ImpersonationConfig{UserName: "someone", Groups: []string{group}}
	c, err := client.New(rc, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hubAdmin is config/samples/hosting's hub-admin Role.
var hubAdmin = []rbacv1.PolicyRule{
	{APIGroups: []string{vpnv1alpha1.GroupVersion.Group}, Resources: []string{"virtualhubs"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
}

// A tenant with a Role on VirtualHubs in its namespace lists and
// disconnects sessions there, with no access to the members or the API
// beyond its Role; in another namespace it is refused; a tenant whose Role
// only reads hubs lists but cannot disconnect.
func TestSessionsTenantRBAC(t *testing.T) {
	nsA := fixture(t)
	newHub(t, nsA, "corp", vpnv1alpha1.HubDynamic)
	setStatus(t, nsA, "corp", vpnv1alpha1.VirtualHubStatus{AssignedMember: "vpn-member-0", Instances: []vpnv1alpha1.HubInstance{{Member: "vpn-member-0"}}})
	nsB := fixture(t)
	newHub(t, nsB, "shop", vpnv1alpha1.HubDynamic)

	tenant := tenantClient(t, nsA, "tenant-a-admins", hubAdmin)
	viewer := tenantClient(t, nsA, "tenant-a-viewers", []rbacv1.PolicyRule{
		{APIGroups: []string{vpnv1alpha1.GroupVersion.Group}, Resources: []string{"virtualhubs"}, Verbs: []string{"get"}},
	})

	r := startMember(t, nsA, "vpn-member-0", env.Config)
	alice, id := idLogin(t, r, nsA+"/corp", "alice")
	corp := types.NamespacedName{Namespace: nsA, Name: "corp"}
	eventually(t, 10*time.Second, "alice listed, read as the tenant", func() error {
		h, err := sessionadmin.Get(bg(), tenant, corp)
		if err != nil {
			return err
		}
		if _, err := sessionadmin.Resolve(h, []string{id[:8]}); err != nil {
			return err
		}
		return nil
	})
	var sb strings.Builder
	h, err := sessionadmin.Get(bg(), viewer, corp)
	if err != nil {
		t.Fatalf("viewer get: %v", err)
	}
	sessionadmin.Print(&sb, h, time.Now())
	if !strings.Contains(sb.String(), id) || !strings.Contains(sb.String(), "alice") {
		t.Errorf("table:\n%s", sb.String())
	}

	// The viewer may not disconnect.
	_, err = sessionadmin.Disconnect(bg(), viewer, corp, []string{id}, 5*time.Second)
	if !apierrors.IsForbidden(errors.Unwrap(err)) {
		t.Fatalf("viewer disconnect: %v, want forbidden", err)
	}
	// The tenant may, and is told alice will be back.
	out, err := sessionadmin.Disconnect(bg(), tenant, corp, []string{id[:10]}, 10*time.Second)
	if err != nil {
		t.Fatalf("tenant disconnect: %v (%v)", err, out)
	}
	alice.shutDownWith(t, member.ReasonDisconnected)
	text := strings.Join(out, "\n")
	if !strings.Contains(text, "session "+id+" (user alice") || !strings.Contains(text, "user alice's password is still in Secret "+nsA+"/users: the client will reconnect") {
		t.Errorf("disconnect said:\n%s", text)
	}
	if h, _ := getHub(nsA, "corp"); h.Annotations[vpnv1alpha1.AnnotationDisconnect] != "" {
		t.Errorf("annotation left: %q", h.Annotations[vpnv1alpha1.AnnotationDisconnect])
	}

	// A user no longer in the Secret cannot come back.
	sec := &corev1.Secret{}
	if err := tenant.Get(bg(), client.ObjectKey{Namespace: nsA, Name: "users"}, sec); err != nil {
		t.Fatal(err)
	}
	delete(sec.Data, "alice")
	if err := tenant.Update(bg(), sec); err != nil {
		t.Fatal(err)
	}
	if ret := sessionadmin.CanReturn(bg(), tenant, h, "alice"); ret.Known || ret.Err != nil || !strings.Contains(ret.String(), "cannot log in again") {
		t.Errorf("after removal: %+v %q", ret, ret.String())
	}

	// Namespace B: nothing.
	shop := types.NamespacedName{Namespace: nsB, Name: "shop"}
	if _, err := sessionadmin.Get(bg(), tenant, shop); !apierrors.IsForbidden(err) {
		t.Errorf("tenant get in another namespace: %v, want forbidden", err)
	}
	if err := sessionadmin.RequestDisconnect(bg(), tenant, shop, []string{id}); !apierrors.IsForbidden(err) {
		t.Errorf("tenant disconnect in another namespace: %v, want forbidden", err)
	}
	// Nor may the tenant write a hub's status (what members do).
	hs := &vpnv1alpha1.VirtualHub{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "corp"}}
	if err := tenant.Status().Patch(bg(), hs, client.RawPatch(types.MergePatchType, []byte(`{"status":{"sessionList":null}}`))); !apierrors.IsForbidden(err) {
		t.Errorf("tenant status patch: %v, want forbidden", err)
	}
}
