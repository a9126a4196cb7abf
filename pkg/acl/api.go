// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package acl

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hubfleet/hubfleet/api/v1alpha1"
)

// CompileSpec compiles a VirtualHub's accessList and accessListDefault. A hub with
// neither gets a Program whose ForUser returns nil for everyone.
func CompileSpec(spec *v1alpha1.VirtualHubSpec) (*Program, error) {
	rules, err := FromAPI(spec.AccessList)
	if err != nil {
		return nil, err
	}
	def, err := ParseAction(string(spec.AccessListDefault))
	if err != nil {
		return nil, fmt.Errorf("accessListDefault: %w", err)
	}
	return Compile(rules, def)
}

// FromAPI converts the API's rules; an error names the rule and the field.
func FromAPI(list []v1alpha1.AccessRule) ([]Rule, error) {
	out := make([]Rule, len(list))
	for i := range list {
		if err := fromAPI(&list[i], &out[i]); err != nil {
			return nil, fmt.Errorf("access rule %d (%q): %w", i, list[i].Name, err)
		}
	}
	return out, nil
}

func fromAPI(a *v1alpha1.AccessRule, r *Rule) error {
	var err error
	r.Name = a.Name
	if a.Action == "" {
		return fmt.Errorf("action is required: Pass or Drop")
	}
	if r.Action, err = ParseAction(string(a.Action)); err != nil {
		return err
	}
	if a.SrcMAC != "" {
		if r.SrcMAC, err = ParseMAC(a.SrcMAC); err != nil {
			return fmt.Errorf("srcMAC: %w", err)
		}
	}
	if a.DstMAC != "" {
		if r.DstMAC, err = ParseMAC(a.DstMAC); err != nil {
			return fmt.Errorf("dstMAC: %w", err)
		}
	}
	if a.EtherType != nil {
		if r.EtherType, err = ParseEtherType(intOrString(a.EtherType)); err != nil {
			return err
		}
	}
	if a.VLAN != nil {
		if *a.VLAN < 0 || *a.VLAN > 4094 {
			return fmt.Errorf("vlan %d: VLAN IDs run from 0 (untagged) to 4094", *a.VLAN)
		}
		v := uint16(*a.VLAN)
		r.VLAN = &v
	}
	if a.SrcCIDR != "" {
		if r.SrcCIDR, err = netip.ParsePrefix(a.SrcCIDR); err != nil {
			return fmt.Errorf("srcCIDR %q: write a prefix such as 10.1.0.0/16 or fd00::/8", a.SrcCIDR)
		}
	}
	if a.DstCIDR != "" {
		if r.DstCIDR, err = netip.ParsePrefix(a.DstCIDR); err != nil {
			return fmt.Errorf("dstCIDR %q: write a prefix such as 10.1.0.0/16 or fd00::/8", a.DstCIDR)
		}
	}
	if a.Protocol != nil {
		v, err := ParseProtocol(intOrString(a.Protocol))
		if err != nil {
			return err
		}
		r.Protocol = &v
	}
	if a.SrcPorts != nil {
		v, err := ParsePorts(intOrString(a.SrcPorts))
		if err != nil {
			return fmt.Errorf("srcPorts: %w", err)
		}
		r.SrcPorts = &v
	}
	if a.DstPorts != nil {
		v, err := ParsePorts(intOrString(a.DstPorts))
		if err != nil {
			return fmt.Errorf("dstPorts: %w", err)
		}
		r.DstPorts = &v
	}
	r.Users = a.Users
	return nil
}

func intOrString(v *intstr.IntOrString) string { return v.String() }
