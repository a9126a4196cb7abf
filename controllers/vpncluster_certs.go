// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package controllers

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vpnv1alpha1 "github.com/hubfleet/hubfleet/api/v1alpha1"
	"github.com/hubfleet/hubfleet/pkg/certs"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 90 * 24 * time.Hour
	// annotationSANs records the names a serving certificate was issued for,
	// so a new Service IP triggers a re-issue without parsing every time.
	annotationSANs = "vpn.hubfleet.io/sans"
	keyCACert      = "ca.crt"
	keyCAKey       = "ca.key"
	keyTicket      = "ticket.key"
)

// certResult is what the certificate phase tells the status phase.
type certResult struct {
	caFingerprint string
	// renewAt is the earliest renewal due, for RequeueAfter: certificates are
	// renewed on time even when nothing else wakes the reconciler.
	renewAt time.Time
}

func (c *certResult) due(t time.Time) {
	if c.renewAt.IsZero() || t.Before(c.renewAt) {
		c.renewAt = t
	}
}

// reconcileCerts keeps the cluster CA, the mesh peer certificate, the
// serving certificate (unless spec.tls names the user's) and the shared
// resumption-ticket key in Secrets. Secrets are read with the API reader, not
// the cache: caching every Secret of the cluster in the operator would cost
// memory and widen what a compromised operator process leaks.
func (r *VPNClusterReconciler) reconcileCerts(ctx context.Context, cl *vpnv1alpha1.VPNCluster, clusterIP string) (certResult, error) {
	var res certResult
	now := time.Now()

	ca, err := r.reconcileCA(ctx, cl, now)
	if err != nil {
		return res, err
	}
	res.due(certs.RenewAt(ca.Cert))
	caPEM, _, err := ca.PEM()
	if err != nil {
		return res, err
	}

	peer := []string{peerName(cl)}
	renew, err := r.reconcileLeaf(ctx, cl, ca, caPEM, peerSecretName(cl), peer, nil, now, "peer (member mesh)",
		func() (certs.KeyPair, error) { return ca.IssuePeer(peerName(cl), leafValidity) })
	if err != nil {
		return res, err
	}
	res.due(renew)

	if cl.Spec.TLS != nil {
		var user corev1.Secret
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cl.Namespace, Name: cl.Spec.TLS.SecretName}, &user); err != nil {
			return res, fmt.Errorf("spec.tls.secretName %q: %w", cl.Spec.TLS.SecretName, err)
		}
		fp, err := certs.FingerprintPEM(user.Data[keyCACert])
		if err != nil {
			return res, fmt.Errorf("spec.tls.secretName %q has no usable ca.crt (clients pin it): %w", cl.Spec.TLS.SecretName, err)
		}
		res.caFingerprint = fp
	} else {
		names, ips := servingNames(cl, clusterIP)
		renew, err := r.reconcileLeaf(ctx, cl, ca, caPEM, tlsSecretName(cl), names, ips, now, "serving",
			func() (certs.KeyPair, error) { return ca.IssueServer(names, ips, leafValidity) })
		if err != nil {
			return res, err
		}
		res.due(renew)
		res.caFingerprint = certs.FingerprintSHA256(ca.Cert.Raw)
	}
	return res, r.reconcileTicketKey(ctx, cl)
}

// servingNames are the client Service's DNS names, every member's DNS name
// under the headless Service, localhost, and the Service IP once allocated.
func servingNames(cl *vpnv1alpha1.VPNCluster, clusterIP string) ([]string, []net.IP) {
	svc, hl, ns := clientServiceName(cl), headlessName(cl), cl.Namespace
	names := []string{
		svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local",
		"*." + hl + "." + ns + ".svc", "*." + hl + "." + ns + ".svc.cluster.local",
		"localhost",
	}
	ips := []net.IP{net.IPv6loopback, net.IPv4(127, 0, 0, 1)}
	if ip := net.ParseIP(clusterIP); ip != nil {
		ips = append(ips, ip)
	}
	return names, ips
}

func (r *VPNClusterReconciler) reconcileCA(ctx context.Context, cl *vpnv1alpha1.VPNCluster, now time.Time) (*certs.CA, error) {
	var s corev1.Secret
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cl.Namespace, Name: caSecretName(cl)}, &s)
	if client.IgnoreNotFound(err) != nil {
		return nil, err
	}
	exists := err == nil
	if exists {
		ca, perr := certs.ParseCA(s.Data[keyCACert], s.Data[keyCAKey])
		if perr == nil && !certs.NeedsRenewal(s.Data[keyCACert], now) {
			return ca, nil
		}
	}
	ca, err := certs.NewCA(fmt.Sprintf("hubfleet %s/%s CA", cl.Namespace, cl.Name), caValidity)
	if err != nil {
		return nil, err
	}
	c, k, err := ca.PEM()
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{keyCACert: c, keyCAKey: k}
	err = r.applySecret(ctx, r.secret(cl, caSecretName(cl), corev1.SecretTypeOpaque, data, nil))
	if !exists {
		r.Recorder.Eventf(cl, secretRef(cl, caSecretName(cl)), corev1.EventTypeNormal, "CAIssued", "IssueCertificate", "issued cluster CA in Secret %s (fingerprint %s)", caSecretName(cl), certs.FingerprintSHA256(ca.Cert.Raw))
	} else {
		// A new CA changes the fingerprint clients pin: say so loudly.
		r.Recorder.Eventf(cl, secretRef(cl, caSecretName(cl)), corev1.EventTypeWarning, "CARenewed", "IssueCertificate", "replaced the cluster CA in Secret %s (unreadable or past 2/3 of its life); clients pinning the old fingerprint must use %s", caSecretName(cl), certs.FingerprintSHA256(ca.Cert.Raw))
	}
	return ca, err
}

// reconcileLeaf keeps a kubernetes.io/tls Secret holding a certificate from
// ca for names; it re-issues when the Secret is missing, signed by another
// CA, issued for other names, or due for renewal. It returns the renewal time.
func (r *VPNClusterReconciler) reconcileLeaf(ctx context.Context, cl *vpnv1alpha1.VPNCluster, ca *certs.CA, caPEM []byte, name string, names []string, ips []net.IP, now time.Time, what string, issue func() (certs.KeyPair, error)) (time.Time, error) {
	sans := strings.Join(names, ",")
	for _, ip := range ips {
		sans += "," + ip.String()
	}
	var s corev1.Secret
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cl.Namespace, Name: name}, &s)
	if client.IgnoreNotFound(err) != nil {
		return time.Time{}, err
	}
	exists := err == nil
	reason := "missing"
	if exists {
		switch {
		case ca.Verify(s.Data[corev1.TLSCertKey], nil, now) != nil:
			reason = "not signed by the current cluster CA"
		case s.Annotations[annotationSANs] != sans:
			reason = "names changed"
		case certs.NeedsRenewal(s.Data[corev1.TLSCertKey], now):
			reason = "past 2/3 of its lifetime"
		default:
			cert, _ := certs.ParseCertificate(s.Data[corev1.TLSCertKey])
			return certs.RenewAt(cert), nil
		}
	}
	kp, err := issue()
	if err != nil {
		return time.Time{}, err
	}
	data := map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, keyCACert: caPEM}
	if err := r.applySecret(ctx, r.secret(cl, name, corev1.SecretTypeTLS, data, map[string]string{annotationSANs: sans})); err != nil {
		return time.Time{}, err
	}
	r.Recorder.Eventf(cl, secretRef(cl, name), corev1.EventTypeNormal, "CertificateIssued", "IssueCertificate", "issued %s certificate in Secret %s (%s); members reload it from the mounted Secret", what, name, reason)
	cert, _ := certs.ParseCertificate(kp.CertPEM)
	return certs.RenewAt(cert), nil
}

// reconcileTicketKey creates the 32-byte key members share to sign session
// resumption tickets, so a ticket from one member is honoured by another.
// It is never rotated by the operator: replacing it would invalidate every
// outstanding ticket at once.
func (r *VPNClusterReconciler) reconcileTicketKey(ctx context.Context, cl *vpnv1alpha1.VPNCluster) error {
	var s corev1.Secret
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cl.Namespace, Name: ticketKeySecretName(cl)}, &s)
	if !apierrors.IsNotFound(err) {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	// Create, not apply: should two passes race, the second fails rather
	// than replace the key the first handed out.
	if err := r.Client.Create(ctx, r.secret(cl, ticketKeySecretName(cl), corev1.SecretTypeOpaque, map[string][]byte{keyTicket: key}, nil), client.FieldOwner(fieldOwner)); err != nil {
		return fmt.Errorf("creating Secret %s: %w", ticketKeySecretName(cl), err)
	}
	return nil
}

func (r *VPNClusterReconciler) secret(cl *vpnv1alpha1.VPNCluster, name string, typ corev1.SecretType, data map[string][]byte, ann map[string]string) *corev1.Secret {
	m := r.meta(cl, name)
	maps.Copy(m.Annotations, ann)
	return &corev1.Secret{ObjectMeta: m, Type: typ, Data: data}
}

func secretRef(cl *vpnv1alpha1.VPNCluster, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: name}}
}
