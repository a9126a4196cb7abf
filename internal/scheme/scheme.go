// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package scheme builds the runtime.Scheme every hubfleet component uses: the
// built-in Kubernetes kinds plus hubfleet's.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
)

// New returns a scheme with the built-in kinds and hubfleet's.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(vpnv1alpha1.AddToScheme(s))
	return s
}
