import Crypto
import Foundation
import Resolver
import Yams

/// Who a bearer token speaks for.
enum Principal: Equatable, Sendable {
    case site(String)
    case admin
    case measurement
}

/// Bearer tokens from the tokens file:
///
/// ```yaml
/// "fra1-report-token": {site: fra1}
/// "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae": {role: admin}
/// ```
///
/// Every token is kept only as its SHA-256, and a presented token is hashed and looked up by
/// that digest, so the file's plaintext never stays in memory. Looking the digest up in a
/// dictionary (rather than comparing it with every stored one in constant time) costs the same
/// for 10 000 tokens as for one, and leaks nothing useful: the time depends only on the digest
/// of what the client sent, and learning how close the digest of a guess is to a stored one
/// does not bring the guess closer to the token (that would take a SHA-256 preimage).
struct TokenStore: Sendable {
    private var principals: [[UInt8]: Principal] = [:]

    static let empty = TokenStore()

    init() {}

    /// Reads the tokens file; errors carry its name and line.
    static func load(path: String, siteIDs: Set<String>) -> Result<TokenStore, ZoneLoadError> {
        let name = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            return .failure(ZoneLoadError(errors: [SourceError(file: name, line: 0, message: "cannot read tokens file")]))
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let YamlError.scanner(_, problem, mark, _), let YamlError.parser(_, problem, mark, _) {
            // Only the problem and the line: Yams's own description quotes the line, which may
            // hold a token in the clear.
            return .failure(ZoneLoadError(errors: [SourceError(file: name, line: mark.line, message: "YAML: \(problem)")]))
        } catch YamlError.duplicatedKeysInMapping {
            return .failure(ZoneLoadError(errors: [SourceError(file: name, line: 1, message: "the same token is listed twice")]))
        } catch {
            return .failure(ZoneLoadError(errors: [SourceError(file: name, line: 1, message: "not a valid YAML tokens file")]))
        }
        let reader = ConfigReader(file: name)
        var store = TokenStore()
        for (token, line, value) in reader.entries(root, "") {
            let path = "tokens[\(line)]" // never the token itself: it is a secret
            var principal: Principal? = nil
            for (key, node) in reader.mapping(value, path, allowed: ["site", "role"]) {
                guard let text = reader.string(node, "\(path).\(key)") else { continue }
                if key == "site" {
                    guard siteIDs.contains(text) else { reader.error(node, "\(path).site", "unknown site \"\(text)\""); continue }
                    principal = .site(text)
                } else {
                    switch text {
                    case "admin": principal = .admin
                    case "measurement": principal = .measurement
                    default: reader.error(node, "\(path).role", "role must be admin or measurement")
                    }
                }
            }
            guard let principal else {
                reader.error(line: line, path, "expected {site: ID} or {role: admin|measurement}")
                continue
            }
            let hash: [UInt8]
            if token.hasPrefix("sha256:") {
                let hex = token.dropFirst(7)
                guard hex.count == 64, let bytes = Self.bytes(hex: hex) else {
                    reader.error(line: line, path, "sha256: needs 64 hex digits")
                    continue
                }
                hash = bytes
            } else {
                guard token.utf8.count >= 16 else {
                    reader.error(line: line, path, "token shorter than 16 characters")
                    continue
                }
                hash = Self.hash(token)
            }
            guard store.principals[hash] == nil else {
                reader.error(line: line, path, "the same token is listed twice")
                continue
            }
            store.principals[hash] = principal
        }
        return reader.errors.isEmpty ? .success(store) : .failure(ZoneLoadError(errors: reader.errors))
    }

    /// Adds a token (tests and tools).
    mutating func add(token: String, principal: Principal) {
        principals[Self.hash(token)] = principal
    }

    /// The principal of an `Authorization: Bearer …` header, or nil.
    func authenticate(authorization: String?) -> Principal? {
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return nil }
        return principals[Self.hash(String(authorization.dropFirst(7)))]
    }

    static func hash(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Data(token.utf8))) }

    /// The bytes of hexadecimal text (token digests, cookie secrets); nil for anything else,
    /// including an odd number of digits.
    static func bytes(hex: Substring) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }
}
