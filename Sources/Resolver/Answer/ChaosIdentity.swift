/// The CHAOS-class TXT names operators query to tell servers apart: `id.server.` and
/// `version.server.` (RFC 4892 §2.2), and BIND's older `hostname.bind.` and `version.bind.`.
///
/// Off unless configured, like NSD's `hide-identity`/`hide-version`: a version string helps
/// an attacker pick exploits, and the instance name may be internal. Answered as NSD 4.6
/// answers them (checked against it): TXT only, AA clear, TTL 0.
public enum ChaosIdentity {
    public static let idNames = ["id.server.", "hostname.bind."]
    public static let versionNames = ["version.server.", "version.bind."]

    /// The CH TXT sets to serve, keyed by owner. TTL 0: the answer describes this instance
    /// and must not be cached for another one behind the same address.
    public static func records(id: String?, version: String?) -> [DNSName: RRSet] {
        var records: [DNSName: RRSet] = [:]
        for (names, text) in [(idNames, id), (versionNames, version)] {
            guard let text else { continue }
            for name in names {
                let owner = try! DNSName(name)
                records[owner] = RRSet(name: owner, type: .txt, rrClass: .chaos, ttl: 0, rdatas: [txtRDATA(text)])
            }
        }
        return records
    }

    /// One TXT RDATA: the text as character-strings of at most 255 bytes (RFC 1035 §3.3.14).
    static func txtRDATA(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        var rdata: [UInt8] = []
        var start = 0
        repeat {
            let end = min(start + 255, bytes.count)
            rdata.append(UInt8(end - start))
            rdata.append(contentsOf: bytes[start..<end])
            start = end
        } while start < bytes.count
        return rdata
    }
}
