// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// HubType is fixed when a hub is created, as in SoftEther.
// +kubebuilder:validation:Enum=Static;Dynamic
type HubType string

const (
	// HubStatic has an instance on every ready member; each session is balanced on its
	// own, and the instances form one Layer-2 segment over the member mesh.
	HubStatic HubType = "Static"
	// HubDynamic has one instance, on the member the operator picks; it moves when that
	// member fails.
	HubDynamic HubType = "Dynamic"
)

// VirtualHubSpec describes one Virtual Hub: an isolated Layer-2 switch.
// +kubebuilder:validation:XValidation:rule="!has(self.localBridge) || self.type == 'Static'",message="localBridge is only allowed on a Static hub: a Dynamic hub lives on one member that can move anywhere; use type: Static to bridge a LAN"
type VirtualHubSpec struct {
	// clusterRef names the VPNCluster that hosts this hub.
	// +required
	ClusterRef ClusterReference `json:"clusterRef"`

	// type is Static or Dynamic; it cannot change after creation.
	// +kubebuilder:default=Dynamic
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable: a hub's type is fixed at creation; delete the VirtualHub and create it again to change it"
	// +optional
	Type HubType `json:"type,omitempty"`

	// maxSessions caps sessions on this hub across the cluster; unset means no cap
	// beyond the cluster's capacity and licenses.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxSessions *int32 `json:"maxSessions,omitempty"`

	// users names a Secret in the hub's namespace whose keys are user names and whose
	// values are argon2id PHC hashes (`hubfleet hash-password` prints one).
	// +optional
	Users *UsersSpec `json:"users,omitempty"`

	// macTable tunes the hub's MAC address table.
	// +optional
	MACTable *MACTableSpec `json:"macTable,omitempty"`

	// localBridge joins a Static hub to a LAN interface on exactly one member at a time.
	// +optional
	LocalBridge *LocalBridgeSpec `json:"localBridge,omitempty"`

	// accessList filters the frames each session sends into the hub, on whichever
	// member serves the session. Rules are tried in order and the first rule whose
	// every match holds decides (pass or drop); a frame no rule matches gets
	// accessListDefault, which is Pass. A rule with no match at all matches every
	// frame, so a last rule {name: rest, action: Drop} makes the list an allow-list.
	// A list that changes applies to running sessions at once (docs/access-lists.md).
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:XValidation:rule="self.all(r, self.filter(s, s.name == r.name).size() == 1)",message="accessList rule names must be unique: each name identifies its rule in drop metrics and Events"
	// +listType=atomic
	// +optional
	AccessList []AccessRule `json:"accessList,omitempty"`

	// accessListDefault is the action for a frame no accessList rule matches: Pass
	// (the default) or Drop.
	// +optional
	AccessListDefault AccessAction `json:"accessListDefault,omitempty"`

	// userLimits limits what each user may hold on the hub: sessions at once,
	// and the rate of each session (docs/user-guide.md, "Per-user limits").
	// +optional
	UserLimits *UserLimitsSpec `json:"userLimits,omitempty"`

	// dhcp runs a DHCP server inside the hub, so clients connecting without an
	// --address get one (docs/user-guide.md, "Addresses from the hub"). Served with
	// the hub by the member holding a Dynamic hub; on a Static hub by exactly one
	// member at a time, placed, fenced and moved as the local bridge is
	// (status.dhcpServer and the DHCPServer condition).
	// +optional
	DHCP *DHCPSpec `json:"dhcp,omitempty"`
}

// UserLimitsSpec limits each user of a hub. A member enforces the limits on
// the sessions it serves: every session of a Dynamic hub is on its one
// member, so the session limit is exact there; on a Static hub it counts per
// member (docs/user-guide.md, "Per-user limits").
type UserLimitsSpec struct {
	// maxSessionsPerUser is how many sessions one user may hold on the hub at
	// once; a login beyond it is refused with a message naming the limit.
	// Unset means no limit per user (maxSessions and licenses still apply).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxSessionsPerUser *int32 `json:"maxSessionsPerUser,omitempty"`

	// sessionRate limits each session's traffic, in each direction on its
	// own: what the session sends into the hub and what the hub sends to it.
	// +optional
	SessionRate *SessionRateSpec `json:"sessionRate,omitempty"`
}

// SessionRateSpec is a token bucket per session and direction.
type SessionRateSpec struct {
	// bitsPerSecond is each direction's sustained rate in bits per second,
	// as a quantity: "100M" is 100 Mbit/s, "1G" 1 Gbit/s. At least 1M.
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('1M')) >= 0",message="sessionRate.bitsPerSecond must be at least 1M (1 Mbit/s), written like 10M or 1G: below that a paced session's own writes could stall past the protocol's timeouts"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('1T')) <= 0",message="sessionRate.bitsPerSecond must be at most 1T (1 Tbit/s): leave sessionRate out for no limit"
	BitsPerSecond resource.Quantity `json:"bitsPerSecond"`

	// burstBytes is how many bytes a session may send at once after an idle
	// spell, as a quantity ("256Ki", "1Mi"). Unset: 50 ms at the rate, at
	// least 64Ki.
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('1500')) >= 0 && quantity(string(self)).compareTo(quantity('1Gi')) <= 0",message="sessionRate.burstBytes must be from 1500 (one full frame) to 1Gi bytes, written like 256Ki; leave it out for 50 ms at the rate"
	// +optional
	BurstBytes *resource.Quantity `json:"burstBytes,omitempty"`
}

// DHCPSpec is a hub's DHCP server: it leases IPv4 addresses of a range to the
// hub's clients. The server is a station on the hub's segment with the range's
// first address (rangeStart); it leases rangeStart+1 to rangeEnd, ARP-probing
// each address before offering it so an address some host already uses (a
// client's --address, a device behind a bridge) is never handed out.
// +kubebuilder:validation:XValidation:rule="!(isCIDR(self.prefix) && cidr(self.prefix).ip().family() == 4 && isIP(self.rangeStart) && ip(self.rangeStart).family() == 4 && isIP(self.rangeEnd) && ip(self.rangeEnd).family() == 4) || (cidr(self.prefix).containsIP(self.rangeStart) && cidr(self.prefix).containsIP(self.rangeEnd))",message="rangeStart and rangeEnd must be inside prefix: widen the prefix or move the range into it"
// +kubebuilder:validation:XValidation:rule="!(isIP(self.rangeStart) && ip(self.rangeStart).family() == 4 && isIP(self.rangeEnd) && ip(self.rangeEnd).family() == 4) || (int(self.rangeStart.split('.')[0]) * 16777216 + int(self.rangeStart.split('.')[1]) * 65536 + int(self.rangeStart.split('.')[2]) * 256 + int(self.rangeStart.split('.')[3])) < (int(self.rangeEnd.split('.')[0]) * 16777216 + int(self.rangeEnd.split('.')[1]) * 65536 + int(self.rangeEnd.split('.')[2]) * 256 + int(self.rangeEnd.split('.')[3]))",message="rangeStart must be below rangeEnd: the server answers from rangeStart and leases the addresses after it, so the range needs at least two addresses"
// +kubebuilder:validation:XValidation:rule="!(isCIDR(self.prefix) && cidr(self.prefix).ip().family() == 4 && isIP(self.rangeStart) && ip(self.rangeStart).family() == 4 && isIP(self.rangeEnd) && ip(self.rangeEnd).family() == 4 && cidr(self.prefix).containsIP(self.rangeStart) && cidr(self.prefix).containsIP(self.rangeEnd)) || ((int(self.rangeStart.split('.')[0]) * 16777216 + int(self.rangeStart.split('.')[1]) * 65536 + int(self.rangeStart.split('.')[2]) * 256 + int(self.rangeStart.split('.')[3])) % [4294967296, 2147483648, 1073741824, 536870912, 268435456, 134217728, 67108864, 33554432, 16777216, 8388608, 4194304, 2097152, 1048576, 524288, 262144, 131072, 65536, 32768, 16384, 8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1][cidr(self.prefix).prefixLength()] != 0 && ((int(self.rangeEnd.split('.')[0]) * 16777216 + int(self.rangeEnd.split('.')[1]) * 65536 + int(self.rangeEnd.split('.')[2]) * 256 + int(self.rangeEnd.split('.')[3])) + 1) % [4294967296, 2147483648, 1073741824, 536870912, 268435456, 134217728, 67108864, 33554432, 16777216, 8388608, 4194304, 2097152, 1048576, 524288, 262144, 131072, 65536, 32768, 16384, 8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1][cidr(self.prefix).prefixLength()] != 0)",message="the range must not include the prefix's network address (its first) or broadcast address (its last): start above the one and end below the other"
// +kubebuilder:validation:XValidation:rule="!has(self.router) || !(isCIDR(self.prefix) && cidr(self.prefix).ip().family() == 4 && isIP(self.router) && ip(self.router).family() == 4) || cidr(self.prefix).containsIP(self.router)",message="router must be inside prefix: clients reach their router on the hub's segment"
// +kubebuilder:validation:XValidation:rule="!has(self.router) || !(isIP(self.router) && ip(self.router).family() == 4 && isIP(self.rangeStart) && ip(self.rangeStart).family() == 4 && isIP(self.rangeEnd) && ip(self.rangeEnd).family() == 4) || (int(self.router.split('.')[0]) * 16777216 + int(self.router.split('.')[1]) * 65536 + int(self.router.split('.')[2]) * 256 + int(self.router.split('.')[3])) < (int(self.rangeStart.split('.')[0]) * 16777216 + int(self.rangeStart.split('.')[1]) * 65536 + int(self.rangeStart.split('.')[2]) * 256 + int(self.rangeStart.split('.')[3])) || (int(self.router.split('.')[0]) * 16777216 + int(self.router.split('.')[1]) * 65536 + int(self.router.split('.')[2]) * 256 + int(self.router.split('.')[3])) > (int(self.rangeEnd.split('.')[0]) * 16777216 + int(self.rangeEnd.split('.')[1]) * 65536 + int(self.rangeEnd.split('.')[2]) * 256 + int(self.rangeEnd.split('.')[3]))",message="router must be outside the range rangeStart-rangeEnd: a router has a fixed address that the server must not lease; move the router or the range"
type DHCPSpec struct {
	// prefix is the hub's IPv4 network, such as 10.8.0.0/24: clients get its
	// mask, and the range, the router and the server lie inside it.
	// +kubebuilder:validation:MaxLength=18
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self).ip().family() == 4 && cidr(self) == cidr(self).masked() && cidr(self).prefixLength() <= 30",message="prefix must be an IPv4 prefix such as 10.8.0.0/24, with no address bits set after the length, and /30 or shorter to leave room for the server and a client"
	Prefix string `json:"prefix"`

	// rangeStart is the server's own address; the addresses after it, up to
	// rangeEnd, are leased.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="rangeStart must be an IPv4 address like 10.8.0.10"
	RangeStart string `json:"rangeStart"`

	// rangeEnd is the last address leased.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="rangeEnd must be an IPv4 address like 10.8.0.10"
	RangeEnd string `json:"rangeEnd"`

	// router is the default gateway given to clients (option 3); omitted, clients
	// get no default route. Inside prefix and outside the range.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="router must be an IPv4 address like 10.8.0.10"
	// +optional
	Router string `json:"router,omitempty"`

	// dnsServers are given to clients (option 6), in order.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.all(a, isIP(a) && ip(a).family() == 4)",message="dnsServers must be IPv4 addresses like 10.8.0.1"
	// +listType=atomic
	// +optional
	DNSServers []string `json:"dnsServers,omitempty"`

	// leaseSeconds is how long a lease lasts; clients renew at half of it.
	// +kubebuilder:default=3600
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=2592000
	// +optional
	LeaseSeconds int32 `json:"leaseSeconds,omitempty"`
}

// AccessAction decides what happens to a frame an access rule matches.
// +kubebuilder:validation:Enum=Pass;Drop
type AccessAction string

const (
	// AccessPass lets the frame into the hub.
	AccessPass AccessAction = "Pass"
	// AccessDrop discards the frame and counts it against the rule.
	AccessDrop AccessAction = "Drop"
)

// AccessRule is one access-list rule: an action and the matches that must all hold
// for it to apply. An omitted match matches anything. Matches on IP fields
// (CIDRs, protocol, ports) never match a frame that is not IP, or whose headers are
// cut short.
// +kubebuilder:validation:XValidation:rule="!(has(self.srcPorts) || has(self.dstPorts)) || (has(self.protocol) && string(self.protocol) in ['tcp', 'udp', '6', '17'])",message="srcPorts and dstPorts need protocol tcp or udp: only TCP and UDP have ports"
// +kubebuilder:validation:XValidation:rule="!has(self.srcCIDR) || !has(self.dstCIDR) || !isCIDR(self.srcCIDR) || !isCIDR(self.dstCIDR) || cidr(self.srcCIDR).ip().family() == cidr(self.dstCIDR).ip().family()",message="srcCIDR and dstCIDR must both be IPv4 or both be IPv6: a packet has addresses of one family; write two rules to cover both"
type AccessRule struct {
	// name identifies the rule in drop metrics and Events; unique in the list.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$')",message="access rule name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	Name string `json:"name"`

	// action: Pass or Drop.
	Action AccessAction `json:"action"`

	// srcMAC matches the source MAC address: "02:00:00:00:00:01", an address and
	// mask "02:00:00:00:00:00/ff:ff:ff:00:00:00" (the bits set in the mask must
	// equal), or the word broadcast or multicast (multicast includes broadcast).
	// +kubebuilder:validation:MaxLength=35
	// +kubebuilder:validation:XValidation:rule="self.matches('^(broadcast|multicast|[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}(/[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5})?)$')",message="srcMAC must be a MAC address like 02:00:5e:00:00:01, an address and mask like 02:00:5e:00:00:00/ff:ff:ff:00:00:00, broadcast or multicast"
	// +optional
	SrcMAC string `json:"srcMAC,omitempty"`

	// dstMAC matches the destination MAC address, written as srcMAC.
	// +kubebuilder:validation:MaxLength=35
	// +kubebuilder:validation:XValidation:rule="self.matches('^(broadcast|multicast|[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}(/[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5})?)$')",message="dstMAC must be a MAC address like 02:00:5e:00:00:01, an address and mask like 02:00:5e:00:00:00/ff:ff:ff:00:00:00, broadcast or multicast"
	// +optional
	DstMAC string `json:"dstMAC,omitempty"`

	// etherType matches the EtherType after any 802.1Q tag: ipv4, ipv6, arp, a
	// number such as 34958 or a hex string such as "0x88cc".
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=6
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1536 && self <= 65535) : self.matches('^(ipv4|ipv6|arp|0[xX](0?[6-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3}))$')",message="etherType must be ipv4, ipv6, arp, or a number from 1536 (0x0600) to 65535 (0xffff)"
	// +optional
	EtherType *intstr.IntOrString `json:"etherType,omitempty"`

	// vlan matches the 802.1Q VLAN ID; 0 matches untagged (and priority-tagged) frames.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4094
	// +optional
	VLAN *int32 `json:"vlan,omitempty"`

	// srcCIDR matches the IPv4 or IPv6 source address against a prefix such as
	// 10.1.0.0/16 or fd00::/8; a frame of the other family does not match.
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self) == cidr(self).masked()",message="srcCIDR must be an IPv4 or IPv6 prefix such as 10.1.0.0/16 or fd00::/8, with no address bits set after the prefix length"
	// +optional
	SrcCIDR string `json:"srcCIDR,omitempty"`

	// dstCIDR matches the destination address, written as srcCIDR.
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && cidr(self) == cidr(self).masked()",message="dstCIDR must be an IPv4 or IPv6 prefix such as 10.1.0.0/16 or fd00::/8, with no address bits set after the prefix length"
	// +optional
	DstCIDR string `json:"dstCIDR,omitempty"`

	// protocol matches the IP protocol (IPv6: the header after any extension
	// headers): tcp, udp, icmp, icmpv6 or a number from 0 to 255.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=6
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 0 && self <= 255) : self in ['tcp', 'udp', 'icmp', 'icmpv6']",message="protocol must be tcp, udp, icmp, icmpv6 or a number from 0 to 255"
	// +optional
	Protocol *intstr.IntOrString `json:"protocol,omitempty"`

	// srcPorts matches the TCP or UDP source port: one port (443) or an inclusive
	// range ("1000-2000"). Needs protocol tcp or udp.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=11
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 0 && self <= 65535) : (self.matches('^[0-9]{1,5}(-[0-9]{1,5})?$') && self.split('-').all(p, int(p) <= 65535) && int(self.split('-')[0]) <= int(self.split('-')[self.split('-').size() - 1]))",message="srcPorts must be a port from 0 to 65535 or a range like 1000-2000 whose first port is not above its last"
	// +optional
	SrcPorts *intstr.IntOrString `json:"srcPorts,omitempty"`

	// dstPorts matches the TCP or UDP destination port, written as srcPorts.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=11
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 0 && self <= 65535) : (self.matches('^[0-9]{1,5}(-[0-9]{1,5})?$') && self.split('-').all(p, int(p) <= 65535) && int(self.split('-')[0]) <= int(self.split('-')[self.split('-').size() - 1]))",message="dstPorts must be a port from 0 to 65535 or a range like 1000-2000 whose first port is not above its last"
	// +optional
	DstPorts *intstr.IntOrString `json:"dstPorts,omitempty"`

	// users limits the rule to sessions logged in as one of these users; omitted,
	// the rule applies to every session.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	Users []string `json:"users,omitempty"`
}

// UsersSpec names the Secret holding a hub's users.
type UsersSpec struct {
	// secretName of a Secret in the hub's namespace: user name → argon2id PHC hash.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
}

// MACTableSpec tunes a hub's learning switch.
type MACTableSpec struct {
	// ageingSeconds: a MAC address not seen for this long is forgotten.
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400
	// +optional
	AgeingSeconds int32 `json:"ageingSeconds,omitempty"`
	// maxEntries caps the table; new addresses beyond it are not learned (and counted).
	// +kubebuilder:default=65536
	// +kubebuilder:validation:Minimum=16
	// +kubebuilder:validation:Maximum=1048576
	// +optional
	MaxEntries int32 `json:"maxEntries,omitempty"`
}

// LocalBridgeSpec joins a static hub to a LAN interface on one member.
type LocalBridgeSpec struct {
	// interface is the name of a host (or secondary pod) network interface.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9_.-]{1,15}$')",message="localBridge.interface must be a Linux interface name: 1 to 15 letters, digits, '_', '.' or '-'"
	Interface string `json:"interface"`
	// nodeSelector limits which members may hold the bridge to those on matching nodes.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// HubInstance is one instance of a hub on a member.
type HubInstance struct {
	// member holding the instance.
	Member string `json:"member"`
	// sessions on this instance.
	// +optional
	Sessions int32 `json:"sessions,omitempty"`
	// ready is true when the member is ready.
	Ready bool `json:"ready"`
}

// Reassignment records the last time a hub moved.
type Reassignment struct {
	// from is the member the hub left ("" for the first placement).
	// +optional
	From string `json:"from,omitempty"`
	// to is the member the hub moved to.
	To string `json:"to"`
	// reason, e.g. MemberFailed, LeaseExpired, MemberRemoved.
	Reason string `json:"reason"`
	// time of the move.
	Time metav1.Time `json:"time"`
}

// VirtualHubStatus is the observed state of a VirtualHub.
type VirtualHubStatus struct {
	// observedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// assignedMember holds a Dynamic hub's single instance.
	// +optional
	AssignedMember string `json:"assignedMember,omitempty"`
	// instances of the hub, one per member holding it.
	// +listType=map
	// +listMapKey=member
	// +optional
	Instances []HubInstance `json:"instances,omitempty"`
	// placement summarises where the hub lives, for kubectl get: the member of a
	// Dynamic hub, or "N members" for a Static hub.
	// +optional
	Placement string `json:"placement,omitempty"`
	// sessions on the hub across the cluster. Defaulted so that `kubectl get`
	// shows 0 rather than an empty column while no client is connected.
	// +kubebuilder:default=0
	// +optional
	Sessions int32 `json:"sessions,omitempty"`
	// localBridge names the member that bridges the hub to its LAN interface.
	// +optional
	LocalBridge string `json:"localBridge,omitempty"`
	// localBridgeEligible are the members that may bridge the hub as the
	// operator last saw them: on a node matching spec.localBridge.nodeSelector
	// (every member when it is empty). A member that moves the bridge of a
	// failed peer while the operator is away chooses among these, since
	// members do not read Nodes.
	// +optional
	LocalBridgeEligible []string `json:"localBridgeEligible,omitempty"`
	// dhcpServer names the member that runs a Static hub's DHCP server
	// (spec.dhcp); the DHCPServer condition says whether it is told to serve.
	// One member at a time, never two: placed and moved like the local bridge.
	// +optional
	DHCPServer string `json:"dhcpServer,omitempty"`
	// lastReassignment is the last move of the hub between members.
	// +optional
	LastReassignment *Reassignment `json:"lastReassignment,omitempty"`
	// conditions: Scheduled, Ready (and Bridged with a localBridge, DHCPServer
	// with dhcp on a Static hub).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// sessionList are the sessions the hub's members serve now, one entry
	// per session, each written by the member serving it (server-side
	// apply, field manager hubfleet-member/<member>), so members of a
	// static hub never overwrite each other's entries. Entries appear about
	// a second after a login or logout; counters are refreshed at most every
	// 30 s. A member lists at most a bounded number of sessions per hub
	// (sessionReports says when it left some out). See docs/sessions.md.
	// +listType=map
	// +listMapKey=id
	// +optional
	SessionList []HubSession `json:"sessionList,omitempty"`
	// sessionReports has one entry per member listing sessions of this hub:
	// how many it serves and how many of them sessionList shows.
	// +listType=map
	// +listMapKey=member
	// +optional
	SessionReports []SessionReport `json:"sessionReports,omitempty"`
}

// HubSession is one session of a hub, as the member serving it reports it.
type HubSession struct {
	// id is the session's identifier (32 hex digits); it names the session
	// in vpn.hubfleet.io/disconnect. A reconnect is a new session with a new id.
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// user logged in.
	User string `json:"user"`
	// kind is client or bridge.
	Kind string `json:"kind"`
	// source is the client's address as the serving member sees it; a
	// session relayed by another member reads "<client> via <entry member>".
	// +optional
	Source string `json:"source,omitempty"`
	// member serving the session.
	Member string `json:"member"`
	// since is when the session logged in.
	Since metav1.Time `json:"since"`
	// rxBytes and rxFrames: from the client into the hub.
	// +optional
	RxBytes int64 `json:"rxBytes,omitempty"`
	// +optional
	RxFrames int64 `json:"rxFrames,omitempty"`
	// txBytes and txFrames: from the hub to the client.
	// +optional
	TxBytes int64 `json:"txBytes,omitempty"`
	// +optional
	TxFrames int64 `json:"txFrames,omitempty"`
	// dhcpAddress is the address the hub's DHCP server leased to a station
	// behind the session, when the hub has spec.dhcp and one did.
	// +optional
	DHCPAddress string `json:"dhcpAddress,omitempty"`
	// lastUpdated is when the member last wrote the counters.
	LastUpdated metav1.Time `json:"lastUpdated"`
}

// SessionReport is one member's summary of the sessions it serves on a hub.
type SessionReport struct {
	// member reporting.
	Member string `json:"member"`
	// sessions the member serves on the hub.
	Sessions int32 `json:"sessions"`
	// listed is how many of them sessionList shows; fewer than sessions
	// means the member reached its cap (docs/sessions.md).
	Listed int32 `json:"listed"`
	// dhcp is the use of the hub's DHCP pool, reported by the member that
	// runs the hub's DHCP server (a Static hub's: the member status.dhcpServer
	// names). Refreshed about a second after a DHCP exchange.
	// +optional
	DHCP *DHCPPoolUse `json:"dhcp,omitempty"`
	// lastUpdated is when the member last wrote its entries.
	LastUpdated metav1.Time `json:"lastUpdated"`
}

// DHCPPoolUse is how much of a hub's DHCP pool is leased.
type DHCPPoolUse struct {
	// poolAddresses the server leases (rangeStart+1 to rangeEnd).
	PoolAddresses int32 `json:"poolAddresses"`
	// leases bound and unexpired.
	Leases int32 `json:"leases"`
	// quarantined addresses: a host answered the server's ARP probe for them,
	// or a client declined them; not handed out for ten minutes.
	// +optional
	Quarantined int32 `json:"quarantined,omitempty"`
}

// AnnotationDisconnect asks the members serving a hub to end sessions: a
// comma-separated list of session ids (status.sessionList[].id). The member
// serving a listed session sends its client Shutdown ("disconnected by an
// administrator") and drops it from status.sessionList. `hubfleet
// disconnect` writes it (patch on virtualhubs) and prunes ids no longer
// listed; an id matches one session only, never its reconnect.
const AnnotationDisconnect = "vpn.hubfleet.io/disconnect"

// VirtualHub is one Virtual Hub hosted by a VPNCluster.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vhub;vh,categories=hubfleet
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterRef.name`
// +kubebuilder:printcolumn:name="Placement",type=string,JSONPath=`.status.placement`,description="member of a Dynamic hub, or instance count of a Static hub"
// +kubebuilder:printcolumn:name="Sessions",type=integer,JSONPath=`.status.sessions`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Bridge",type=string,JSONPath=`.status.localBridge`,priority=1
// +kubebuilder:printcolumn:name="DHCP",type=string,JSONPath=`.status.dhcpServer`,priority=1,description="member running a Static hub's DHCP server"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualHub struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   VirtualHubSpec   `json:"spec"`
	Status VirtualHubStatus `json:"status,omitempty"`
}

// VirtualHubList is a list of VirtualHubs.
// +kubebuilder:object:root=true
type VirtualHubList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualHub `json:"items"`
}

func init() {
	register(&VirtualHub{}, &VirtualHubList{})
}
