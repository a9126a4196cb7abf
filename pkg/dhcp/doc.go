// Copyright 2026 The hubfleet authors.
// Licensed under the Apache License, Version 2.0 (see LICENSE).

// Package dhcp is a hub's virtual DHCPv4 server (RFC 2131/2132) and the
// pieces a client needs: the message codec, Ethernet/IPv4/UDP and ARP
// frames, an address pool and a server state machine. It knows nothing of
// Kubernetes or of the switch: the member attaches a Server to a hub port
// (pkg/member/dhcp.go), the client speaks to it from its TAP device
// (pkg/client/dhcp.go).
//
// # The server on the segment
//
// The server is one more station on the hub: it has an Ethernet address
// derived from the hub's name (MACFor) and the first address of the range
// (rangeStart), answers ARP for it, and sends and receives ordinary frames.
// Nothing is added to the switch's forwarding path; a hub without DHCP pays
// nothing.
//
// # No address handed to two clients
//
//   - The pool records one lease per address and one per client; an address
//     held (offered or bound, unexpired) by one client is never offered or
//     acknowledged to another.
//   - Before offering an address the server sends an ARP probe for it
//     (RFC 2131 2.2, RFC 5227 sender 0.0.0.0) and waits ProbeTimeout. A
//     host that answers — a static --address, a device behind a bridge,
//     another server's client — keeps it: the address is quarantined for
//     ten minutes and the next one is probed. A DECLINE from a client
//     quarantines its address the same way.
//
// # Leases survive a move: learned back from the segment
//
// A dynamic hub's server lives on the member that serves the hub; when the
// member dies the hub moves and a new server starts with an empty table.
// Leases are not written anywhere (no status writes per lease, no
// ConfigMap): the clients hold them, and the new server learns them back.
//
//   - The new server has the same MAC and IP, so a client renewing by
//     unicast (RENEWING, at T1) reaches it through its unchanged ARP cache;
//     one rebinding by broadcast (at T2) or rebooting (INIT-REBOOT) reaches
//     it anyway.
//   - A REQUEST for an address the server has no record of — inside the
//     pool, held by no other client, not quarantined — is acknowledged
//     after an ARP probe that no other host answers (the client itself may,
//     it holds the address). RFC 2131 4.3.2 has a server without a record
//     stay silent; that rule protects a segment with several servers, which
//     a hub never has, and would turn every move into address changes.
//   - A new client's first address is chosen from a point its identifier
//     hashes to, so the few clients that lost their lease entirely while
//     the server was away are likely offered the same address again.
//
// What is lost in a move: nothing a client needs. Until each client has
// renewed, the new server does not know which addresses are taken, so a
// new client could be offered one of them — which the ARP probe catches,
// because the holder answers it.
package dhcp
