import CLDNS
import Foundation

/// Reads RFC 1035 master files with ldns into `Zone`s.
///
/// ldns parses each record's text (every type it knows, RFC 3597 `\#` for the rest); this
/// type handles the directives and keeps file and line for every error. ldns is called only
/// here, at load time: the query path never touches it.
public enum ZoneFileLoader {
    /// The TTL for records before any `$TTL` that give none (ldns's and BIND's default).
    static let fallbackTTL: UInt32 = 3600
    static let maxIncludeDepth = 8

    /// Loads one zone file. Without `$ORIGIN`, relative names are taken relative to the
    /// file name minus `.zone` (so `svc.example.zone` holds `svc.example.`).
    public static func load(path: String) -> Result<Zone, ZoneLoadError> {
        let fileName = (path as NSString).lastPathComponent
        let stem = fileName.hasSuffix(".zone") ? String(fileName.dropLast(5)) : fileName
        let origin = (try? DNSName(stem.hasSuffix(".") ? stem : stem + ".")) ?? .root
        var state = ParseState(origin: origin)
        parse(path: path, displayName: fileName, state: &state, depth: 0)
        let built = ZoneBuilder.build(records: state.records, file: fileName)
        guard !state.errors.isEmpty else { return built }
        // Report zone-level problems of the records that did parse too, so one `check` run
        // shows everything; "no SOA" is only news when the SOA line itself parsed.
        var errors = state.errors
        if case .failure(let more) = built, state.records.contains(where: { $0.type == .soa }) {
            errors.append(contentsOf: more.errors)
        }
        return .failure(ZoneLoadError(errors: errors.sorted { ($0.file, $0.line) < ($1.file, $1.line) }))
    }

    /// Loads every `*.zone` file in a directory, in name order. Two files for the same
    /// zone are an error.
    public static func loadDirectory(_ directory: String) -> Result<[Zone], ZoneLoadError> {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasSuffix(".zone") }.sorted()
        } catch {
            return .failure(ZoneLoadError(errors: [SourceError(file: directory, line: 0,
                message: "cannot read zone directory: \(error.localizedDescription)")]))
        }
        var zones: [Zone] = []
        var errors: [SourceError] = []
        for file in files {
            switch load(path: (directory as NSString).appendingPathComponent(file)) {
            case .success(let zone):
                if let other = zones.first(where: { $0.origin == zone.origin }) {
                    errors.append(SourceError(file: file, line: 1,
                        message: "zone \(zone.origin.text) is already loaded from \(other.source)"))
                } else {
                    zones.append(zone)
                }
            case .failure(let error):
                errors.append(contentsOf: error.errors)
            }
        }
        return errors.isEmpty ? .success(zones) : .failure(ZoneLoadError(errors: errors))
    }

    struct ParseState {
        var origin: DNSName
        var defaultTTL: UInt32 = ZoneFileLoader.fallbackTTL
        var records: [ZoneRecord] = []
        var errors: [SourceError] = []
        /// The previous owner, for records that start with white space (RFC 1035 §5.1).
        var previousOwner: DNSName? = nil
    }

    static func parse(path: String, displayName: String, state: inout ParseState, depth: Int) {
        guard let data = FileManager.default.contents(atPath: path) else {
            state.errors.append(SourceError(file: displayName, line: 0, message: "cannot read \(path)"))
            return
        }
        let (entries, splitErrors) = MasterFileSplitter.split(Array(data), file: displayName)
        state.errors.append(contentsOf: splitErrors)
        for entry in entries {
            func fail(_ message: String) {
                state.errors.append(SourceError(file: displayName, line: entry.line, message: message))
            }
            let trimmed = entry.text.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix("$") else {
                switch parseRecord(entry.text, state: &state) {
                case .success(let record):
                    state.records.append(ZoneRecord(name: record.name, type: record.type, rrClass: record.rrClass,
                                                    ttl: record.ttl, rdata: record.rdata, line: entry.line,
                                                    file: depth == 0 ? nil : displayName))
                case .failure(let message):
                    fail(message)
                }
                continue
            }
            let words = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            switch words[0].uppercased() {
            case "$ORIGIN":
                guard words.count == 2, let origin = try? DNSName(words[1], origin: state.origin) else {
                    fail("$ORIGIN needs one domain name"); continue
                }
                state.origin = origin
            case "$TTL":
                guard words.count == 2, let ttl = parseTTL(words[1]) else {
                    fail("$TTL needs one TTL value (e.g. 3600 or 1h)"); continue
                }
                state.defaultTTL = ttl
            case "$INCLUDE":
                guard words.count == 2 || words.count == 3 else {
                    fail("$INCLUDE needs a file name and optionally an origin"); continue
                }
                guard depth < maxIncludeDepth else {
                    fail("$INCLUDE nested more than \(maxIncludeDepth) deep"); continue
                }
                let directory = (path as NSString).deletingLastPathComponent
                let target = words[1].hasPrefix("/") ? words[1] : (directory as NSString).appendingPathComponent(words[1])
                // RFC 1035 §5.1: the origin given to $INCLUDE applies to that file only.
                let savedOrigin = state.origin
                if words.count == 3 {
                    guard let origin = try? DNSName(words[2], origin: state.origin) else {
                        fail("$INCLUDE origin \(words[2]) is not a domain name"); continue
                    }
                    state.origin = origin
                }
                parse(path: target, displayName: words[1], state: &state, depth: depth + 1)
                state.origin = savedOrigin
            default:
                fail("unknown directive \(words[0])")
            }
        }
    }

    /// TTL in seconds or with BIND units (1w2d3h4m5s).
    static func parseTTL(_ text: String) -> UInt32? {
        text.withCString { pointer in
            var end: UnsafePointer<CChar>? = nil
            let value = ldns_str2period(pointer, &end)
            guard let end, end.pointee == 0, end != pointer else { return nil }
            return value
        }
    }

    enum RecordResult {
        case success(ZoneRecord)
        case failure(String)
    }

    /// Parses one record with ldns and copies it out in wire form.
    static func parseRecord(_ text: String, state: inout ParseState) -> RecordResult {
        let originBytes = Array(state.origin.wire)
        let origin = originBytes.withUnsafeBufferPointer {
            ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, $0.count, $0.baseAddress)
        }
        defer { ldns_rdf_deep_free(origin) }
        var previous: UnsafeMutablePointer<ldns_rdf>? = nil
        if let owner = state.previousOwner {
            let bytes = Array(owner.wire)
            previous = bytes.withUnsafeBufferPointer {
                ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, $0.count, $0.baseAddress)
            }
        }
        defer { if previous != nil { ldns_rdf_deep_free(previous) } }
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        let status = text.withCString { ldns_rr_new_frm_str(&rr, $0, state.defaultTTL, origin, &previous) }
        guard status == LDNS_STATUS_OK, let rr else {
            let reason = String(cString: ldns_get_errorstr_by_id(status))
            return .failure(reason.prefix(1).lowercased() + reason.dropFirst())
        }
        defer { ldns_rr_free(rr) }
        guard let ownerRdf = ldns_rr_owner(rr), let ownerData = ldns_rdf_data(ownerRdf) else {
            return .failure("record has no owner name")
        }
        let ownerBytes = Array(UnsafeBufferPointer(start: ownerData, count: ldns_rdf_size(ownerRdf)))
        guard let owner = try? DNSName(wire: ownerBytes) else { return .failure("invalid owner name") }
        var rdata = [UInt8](repeating: 0, count: 65535)
        let length = rdata.withUnsafeMutableBufferPointer { cldns_rdata_wire(rr, $0.baseAddress, $0.count) }
        guard length >= 0 else { return .failure("RDATA longer than 65535 octets") }
        rdata.removeSubrange(length...)
        let type = RRType(rawValue: UInt16(truncatingIfNeeded: ldns_rr_get_type(rr).rawValue))
        if type.hasCompressibleRDATA {
            guard validateNames(type: type, rdata: rdata) else { return .failure("malformed \(type) RDATA") }
        }
        state.previousOwner = owner
        return .success(ZoneRecord(name: owner, type: type,
                                   rrClass: RRClass(rawValue: UInt16(truncatingIfNeeded: ldns_rr_get_class(rr).rawValue)),
                                   ttl: ldns_rr_ttl(rr), rdata: rdata, line: 0))
    }

    /// Checks that RDATA of an RFC 1035 type has exactly the shape the encoder will walk.
    static func validateNames(type: RRType, rdata: [UInt8]) -> Bool {
        rdata.withUnsafeBytes { raw in
            var reader = WireReader(raw)
            for field in RDataLayout.fields(of: type) {
                switch field {
                case .name:
                    // Stored names are uncompressed: a pointer here would be a bug.
                    guard (try? reader.readName()) != nil else { return false }
                case .fixed(let count):
                    guard (try? reader.skip(count)) != nil else { return false }
                }
            }
            return reader.remaining == 0
        }
    }
}
