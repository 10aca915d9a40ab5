/// A record as read from a master file, before it is grouped into the zone.
public struct ZoneRecord: Sendable {
    public var name: DNSName
    public var type: RRType
    public var rrClass: RRClass
    public var ttl: UInt32
    public var rdata: [UInt8]
    public var line: Int
    /// The file the record came from when it is not the zone file itself ($INCLUDE).
    public var file: String?

    public init(name: DNSName, type: RRType, rrClass: RRClass = .in, ttl: UInt32, rdata: [UInt8], line: Int,
                file: String? = nil) {
        self.file = file
        self.name = name
        self.type = type
        self.rrClass = rrClass
        self.ttl = ttl
        self.rdata = rdata
        self.line = line
    }
}

/// Groups records into a `Zone`, enforcing what an authoritative server must not serve:
/// a zone without exactly one SOA at its apex, data outside the zone, and CNAME beside
/// other data (RFC 1034 §3.6.2, RFC 2181 §10.1).
public enum ZoneBuilder {
    public static func build(records: [ZoneRecord], file: String) -> Result<Zone, ZoneLoadError> {
        var errors: [SourceError] = []
        func fail(_ record: ZoneRecord, _ message: String) {
            errors.append(SourceError(file: record.file ?? file, line: record.line, message: message))
        }

        let soas = records.filter { $0.type == .soa }
        guard let soaRecord = soas.first else {
            return .failure(ZoneLoadError(errors: [SourceError(file: file, line: 1, message: "zone has no SOA record")]))
        }
        let origin = soaRecord.name
        for extra in soas.dropFirst() {
            fail(extra, "more than one SOA record (first at line \(soaRecord.line))")
        }

        // Group by owner, then by type, keeping first-seen order.
        var order: [DNSName] = []
        var byName: [DNSName: [(type: RRType, records: [ZoneRecord])]] = [:]
        for record in records {
            guard record.rrClass == .in else {
                fail(record, "class \(record.rrClass.rawValue) is not served; only IN")
                continue
            }
            guard record.name.isSubdomain(of: origin) else {
                fail(record, "\(record.name.text) is outside the zone \(origin.text)")
                continue
            }
            if record.type == .soa && record.name != origin { continue } // reported above
            if byName[record.name] == nil {
                order.append(record.name)
                byName[record.name] = []
            }
            if let index = byName[record.name]!.firstIndex(where: { $0.type == record.type }) {
                // RFC 2181 §5: an RRset holds no duplicate records; a duplicate may still
                // lower the set's TTL.
                if let same = byName[record.name]![index].records.firstIndex(where: { $0.rdata == record.rdata }) {
                    let ttl = min(byName[record.name]![index].records[same].ttl, record.ttl)
                    byName[record.name]![index].records[same].ttl = ttl
                } else {
                    byName[record.name]![index].records.append(record)
                }
            } else {
                byName[record.name]!.append((record.type, [record]))
            }
        }

        // CNAME stands alone (RFC 1034 §3.6.2); DNSSEC types may accompany it (RFC 4035 §2.5).
        for name in order {
            let sets = byName[name]!
            guard let cname = sets.first(where: { $0.type == .cname }) else { continue }
            if cname.records.count > 1 {
                fail(cname.records[1], "more than one CNAME record at \(name.text)")
            }
            for other in sets where other.type != .cname && other.type != .rrsig && other.type != .nsec {
                let later = other.records[0].line > cname.records[0].line ? other.records[0] : cname.records[0]
                fail(later, "CNAME and other data at \(name.text) (\(other.type) at line \(other.records[0].line), CNAME at line \(cname.records[0].line))")
            }
        }
        guard errors.isEmpty else { return .failure(ZoneLoadError(errors: errors)) }

        // Build the RRsets; one TTL per set, the lowest (RFC 2181 §5.2).
        var rrsetsByName: [DNSName: [RRSet]] = [:]
        var recordCount = 0
        for name in order {
            rrsetsByName[name] = byName[name]!.map { group in
                recordCount += group.records.count
                return RRSet(name: name, type: group.type, ttl: group.records.map(\.ttl).min()!,
                             rdatas: group.records.map(\.rdata))
            }
        }
        // Empty non-terminals between each name and the apex.
        for name in order {
            var parent = name.parent
            while let current = parent, current != origin, current.isSubdomain(of: origin) {
                if rrsetsByName[current] == nil {
                    rrsetsByName[current] = []
                }
                parent = current.parent
            }
        }
        var wildcardParents = Set<DNSName>()
        for name in rrsetsByName.keys where name.isWildcard {
            if let parent = name.parent { wildcardParents.insert(parent) }
        }
        var nodes: [DNSName: ZoneNode] = [:]
        nodes.reserveCapacity(rrsetsByName.count)
        for (name, sets) in rrsetsByName {
            let isCut = name != origin && sets.contains { $0.type == .ns }
            // The topmost cut at or above this name.
            var delegation: RRSet? = nil
            var walk: DNSName? = name
            while let current = walk, current != origin {
                if let ns = rrsetsByName[current]?.first(where: { $0.type == .ns }) { delegation = ns }
                walk = current.parent
            }
            nodes[name] = ZoneNode(name: name, rrsets: sets, delegation: delegation, isCut: isCut,
                                   hasWildcardChild: wildcardParents.contains(name))
        }
        let apex = rrsetsByName[origin] ?? []
        let soa = apex.first { $0.type == .soa }!
        return .success(Zone(origin: origin, soa: soa, apexNS: apex.first { $0.type == .ns }, nodes: nodes,
                             recordCount: recordCount, source: file))
    }
}

/// One or more located errors from loading a zone.
public struct ZoneLoadError: Error, Sendable, CustomStringConvertible {
    public var errors: [SourceError]
    public init(errors: [SourceError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
