import Scoring

extension ServingState {
    /// Answers a question for a service name from a steering decision.
    ///
    /// A and AAAA carry the chosen sites' addresses with the decision's TTL; AAAA for sites
    /// without IPv6, and every other type, is NODATA with the SOA (SPEC.md). The decision's
    /// scope becomes the ECS scope.
    public func answerService(_ entry: ServiceEntry, question: Question, client: Client, now: Double,
                              sequence: UInt64, into resolution: inout Resolution) {
        resolution.authoritative = true
        let type: RRType = question.type == .any ? .a : question.type
        guard type == .a || type == .aaaa else {
            resolution.authority.append(SectionEntry(owner: entry.zone.origin, rrset: entry.zone.negativeSOA))
            return
        }
        let service = steering.services[entry.index]
        // Time one decision in 64: enough for the histogram, two clock reads spared for the rest.
        let timed = sequence & 63 == 0
        let start = timed ? ContinuousClock.now : nil
        let decision: Decision
        if service.isSticky {
            // Sticky: keep the client's site while it stays good enough (Affinity).
            let outcome = affinity.decide(service: service, client: client, snapshot: steering, now: now)
            metrics.binding(outcome.event)
            decision = outcome.decision
        } else {
            decision = Selector.select(service: service, client: client, snapshot: steering, now: now, sequence: sequence)
        }
        if let start {
            let elapsed = ContinuousClock.now - start
            metrics.decision(nanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        resolution.scopePrefixLength = UInt8(clamping: decision.scope)

        var chosen: [RRSet] = []
        for site in decision.sites {
            guard let sets = entry.rrsets[site], let set = type == .a ? sets.a : sets.aaaa else { continue }
            chosen.append(set)
            ledger.record(site: site, now: now)
            metrics.answered(service: entry.index, site: site)
        }
        guard let first = chosen.first else {
            resolution.authority.append(SectionEntry(owner: entry.zone.origin, rrset: entry.zone.negativeSOA))
            return
        }
        // One site: its precomputed set. Several: one RRset of all their addresses.
        let set = chosen.count == 1 ? first
            : RRSet(name: entry.name, type: type, ttl: decision.ttl, rdatas: chosen.flatMap(\.rdatas))
        resolution.answer.append(SectionEntry(owner: question.name, rrset: set, ttl: decision.ttl))
        catalog.finishPositive(zone: entry.zone, into: &resolution)
    }
}
