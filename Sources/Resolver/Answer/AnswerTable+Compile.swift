import Scoring

extension AnswerTable {
    /// Compiled answers take at most this many bytes; names beyond are answered by the
    /// general path (a very large zone is served correctly, only more slowly).
    public static let defaultBudget = 256 << 20

    /// Compiles the answers of `catalog` and the templates of `services`.
    ///
    /// For every name of every zone: each type it has, plus A and AAAA (the NODATA or CNAME
    /// answers most often asked). Service names get one template per site and family. Names
    /// that are not in the table (NXDOMAIN, wildcard synthesis, other types) and queries
    /// with options the fast path does not handle go the general way.
    static func compile(catalog: Catalog, services: [DNSName: ServiceEntry], steering: SteeringSnapshot,
                        budget: Int = defaultBudget) -> AnswerTable {
        var table = AnswerTable()
        var responder = Responder()
        var resolution = Resolution()
        zones: for zone in catalog.zones.values {
            for (name, node) in zone.nodes where services[name] == nil {
                var types = node.rrsets.map(\.type)
                for type in [RRType.a, .aaaa] where !types.contains(type) { types.append(type) }
                for type in types {
                    guard table.compiledBytes < budget else { break zones }
                    resolution.reset()
                    let question = Question(name: name, type: type)
                    guard catalog.answer(question, into: &resolution) else { continue }
                    let (bytes, questionEnd) = responder.compile(question, resolution)
                    let compiled = table.store(bytes, questionEnd: questionEnd)
                    table.add(name: name, type: type, kind: .fixed(compiled))
                }
            }
        }

        var templates = [[Int: SiteTemplates]](repeating: [:], count: steering.services.count)
        for (name, entry) in services {
            for site in steering.services[entry.index].sites {
                func template(_ type: RRType) -> Compiled {
                    resolution.reset()
                    entry.render(owner: name, type: type, sites: [site], ttl: steering.services[entry.index].ttl,
                                 scope: 0, catalog: catalog, into: &resolution)
                    let (bytes, questionEnd) = responder.compile(Question(name: name, type: type), resolution)
                    return table.store(bytes, questionEnd: questionEnd,
                                       ttlOffsets: Self.ttlOffsets(bytes, from: questionEnd, records: resolution.answer.count > 0
                                                                   ? Int(UInt16(bytes[6]) << 8 | UInt16(bytes[7])) : 0))
                }
                templates[entry.index][site] = SiteTemplates(a: template(.a), aaaa: template(.aaaa))
            }
            for type in [RRType.a, .aaaa, .any] { table.add(name: name, type: type, kind: .service(index: entry.index)) }
        }
        table.setServices(templates)
        table.seal()
        return table
    }

    /// Offsets of the TTL fields of the first `records` records after `from` in `message`
    /// (a message this server encoded, so it is well formed).
    static func ttlOffsets(_ message: [UInt8], from: Int, records: Int) -> [Int] {
        var offsets: [Int] = []
        var offset = from
        for _ in 0..<records {
            // Owner: labels ending in the root or a pointer.
            while message[offset] != 0 && message[offset] & 0xC0 != 0xC0 { offset += 1 + Int(message[offset]) }
            offset += message[offset] == 0 ? 1 : 2
            offsets.append(offset + 4)
            let length = Int(message[offset + 8]) << 8 | Int(message[offset + 9])
            offset += 10 + length
        }
        return offsets
    }
}
