// Package controllers holds hubfleet's reconcilers: one per kind (VPNCluster,
// VirtualHub, ConnectionLicense), one file per concern.
package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options configure the reconcilers.
type Options struct {
	// MemberImage is the image member pods run when a VPNCluster sets no spec.image.
	MemberImage string
	// OperatorNamespace is where the operator runs.
	OperatorNamespace string
}

// Setup registers every hubfleet reconciler with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	return nil
}
