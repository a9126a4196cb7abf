package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// beyond the cluster's capacity and licences.
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
	// lastReassignment is the last move of the hub between members.
	// +optional
	LastReassignment *Reassignment `json:"lastReassignment,omitempty"`
	// conditions: Scheduled, Ready (and Bridged with a localBridge).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

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
	SchemeBuilder.Register(&VirtualHub{}, &VirtualHubList{})
}
