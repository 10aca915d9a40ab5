extension Catalog {
    /// Longest CNAME chain followed inside a zone before the answer stops (NSD and BIND use
    /// similar small limits; a loop ends here too).
    static let maxChain = 8

    /// Answers a question from static zone data, per RFC 1034 §4.3.2 with RFC 2308 negative
    /// answers and RFC 4592 wildcards. Returns false when no zone contains the name.
    ///
    /// The sections follow NSD's defaults so that answers compare equal with it: positive
    /// answers carry the apex NS set in authority and the addresses of NS, MX and SRV targets
    /// in additional (all A sets, then all AAAA sets).
    public func answer(_ question: Question, into resolution: inout Resolution) -> Bool {
        guard let zone = zone(for: question.name) else { return false }
        resolution.authoritative = true
        var name = question.name
        let type = question.type
        for _ in 0...Self.maxChain {
            switch zone.lookup(name, qtype: type) {
            case .delegation(let ns):
                // Referral (RFC 1034 §4.3.2 3b): AA only if a CNAME led here from our data.
                resolution.authoritative = !resolution.answer.isEmpty
                resolution.authority.append(SectionEntry(owner: ns.name, rrset: ns))
                addAddresses(for: ns.additionalNames, in: zone, to: &resolution)
                return true
            case .nxdomain:
                resolution.rcode = .nxDomain
                resolution.authority.append(SectionEntry(owner: zone.origin, rrset: zone.negativeSOA))
                return true
            case .exact(let node), .wildcard(let node):
                if type == .any {
                    // RFC 8482 §4.2: answer with one RRset rather than all of them.
                    if let first = node.rrsets.first {
                        resolution.answer.append(SectionEntry(owner: name, rrset: first))
                    } else {
                        resolution.authority.append(SectionEntry(owner: zone.origin, rrset: zone.negativeSOA))
                    }
                    return true
                }
                if let set = node.rrset(type) {
                    resolution.answer.append(SectionEntry(owner: name, rrset: set))
                    finishPositive(zone: zone, into: &resolution)
                    return true
                }
                if let cname = node.rrset(.cname), let target = cname.target {
                    resolution.answer.append(SectionEntry(owner: name, rrset: cname))
                    // Follow the chain only inside this zone; the resolver does the rest.
                    guard target.isSubdomain(of: zone.origin) else { return true }
                    name = target
                    continue
                }
                // NODATA (RFC 2308 §2.2).
                resolution.authority.append(SectionEntry(owner: zone.origin, rrset: zone.negativeSOA))
                return true
            }
        }
        return true
    }

    /// Authority NS and additional addresses for a positive answer, as NSD sends them.
    func finishPositive(zone: Zone, into resolution: inout Resolution) {
        var apexNS: RRSet? = nil
        if let ns = zone.apexNS, !resolution.answer.contains(where: { $0.rrset === ns }) {
            resolution.authority.append(SectionEntry(owner: zone.origin, rrset: ns))
            apexNS = ns
        }
        // Targets of the answer first, then of the authority NS, A sets before AAAA sets.
        for type in [RRType.a, RRType.aaaa] {
            for index in resolution.answer.indices {
                addAddresses(of: type, for: resolution.answer[index].rrset.additionalNames, in: zone, to: &resolution)
            }
            if let apexNS { addAddresses(of: type, for: apexNS.additionalNames, in: zone, to: &resolution) }
        }
    }

    /// Adds the A, then AAAA, sets of in-zone target names to the additional section.
    private func addAddresses(for targets: [DNSName], in zone: Zone, to resolution: inout Resolution) {
        for type in [RRType.a, RRType.aaaa] { addAddresses(of: type, for: targets, in: zone, to: &resolution) }
    }

    private func addAddresses(of type: RRType, for targets: [DNSName], in zone: Zone, to resolution: inout Resolution) {
        for target in targets {
            guard target.isSubdomain(of: zone.origin), let node = zone.nodes[target],
                  let set = node.rrset(type),
                  // An RRset is sent once per message (RFC 2181 §5.1), as NSD does.
                  !resolution.additional.contains(where: { $0.rrset === set }),
                  !resolution.answer.contains(where: { $0.rrset === set }) else { continue }
            resolution.additional.append(SectionEntry(owner: set.name, rrset: set))
        }
    }
}
