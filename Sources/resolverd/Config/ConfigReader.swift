import Foundation
import Resolver
import Scoring
import Yams

/// Walks a YAML document, collecting every error with its file, line and path
/// (`services.api.svc.example..sites[2]: unknown site "par9"`), so that one run of
/// `resolverd check` reports all of them.
final class ConfigReader {
    let file: String
    private(set) var errors: [SourceError] = []

    init(file: String) {
        self.file = file
    }

    func error(_ node: Node?, _ path: String, _ message: String) {
        errors.append(SourceError(file: file, line: node?.mark?.line ?? 1,
                                  message: path.isEmpty ? message : "\(path): \(message)"))
    }

    func error(line: Int, _ path: String, _ message: String) {
        errors.append(SourceError(file: file, line: line, message: path.isEmpty ? message : "\(path): \(message)"))
    }

    /// The entries of a mapping, in order; reports keys outside `allowed` as errors.
    func mapping(_ node: Node?, _ path: String, allowed: Set<String>? = nil) -> [(key: String, value: Node)] {
        entries(node, path).compactMap { key, line, value in
            if let allowed, !allowed.contains(key) {
                let choices = allowed.sorted().joined(separator: ", ")
                error(line: line, join(path, key), "unknown key (expected one of: \(choices))")
                return nil
            }
            return (key, value)
        }
    }

    /// Like `mapping`, with the line of each key: errors about an entry as a whole point at
    /// its name rather than its first field.
    func entries(_ node: Node?, _ path: String) -> [(key: String, line: Int, value: Node)] {
        guard let node else { return [] }
        guard let mapping = node.mapping else {
            error(node, path, "expected a mapping")
            return []
        }
        return mapping.compactMap { key, value in
            guard let name = key.string else {
                error(key, path, "keys must be strings")
                return nil
            }
            return (name, key.mark?.line ?? 1, value)
        }
    }

    func sequence(_ node: Node?, _ path: String) -> [Node] {
        guard let node else { return [] }
        guard let sequence = node.sequence else {
            error(node, path, "expected a list")
            return []
        }
        return Array(sequence)
    }

    func string(_ node: Node?, _ path: String) -> String? {
        guard let node else { return nil }
        guard let scalar = node.scalar else {
            error(node, path, "expected a string")
            return nil
        }
        return scalar.string
    }

    func int(_ node: Node?, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        guard let value = node.scalar.flatMap({ Int($0.string) }) else {
            error(node, path, "expected a whole number")
            return nil
        }
        guard range.contains(value) else {
            error(node, path, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    func double(_ node: Node?, _ path: String, range: ClosedRange<Double>) -> Double? {
        guard let node else { return nil }
        guard let value = node.scalar.flatMap({ Double($0.string) }), value.isFinite else {
            error(node, path, "expected a number")
            return nil
        }
        guard range.contains(value) else {
            error(node, path, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    /// `[latitude, longitude]` in degrees.
    func location(_ node: Node?, _ path: String) -> GeoPoint? {
        guard let node else { return nil }
        let values = sequence(node, path).compactMap { double($0, path, range: -180...180) }
        guard values.count == 2, let point = GeoPoint(latitude: values[0], longitude: values[1]) else {
            error(node, path, "expected [latitude, longitude] in degrees")
            return nil
        }
        return point
    }

    /// Reads and parses a YAML file: its root node, or the located reason it has none.
    static func compose(path: String) -> Result<Node?, SourceError> {
        let displayName = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            return .failure(SourceError(file: path, line: 0, message: "cannot read file"))
        }
        do {
            return .success(try Yams.compose(yaml: text))
        } catch let YamlError.scanner(_, problem, mark, _), let YamlError.parser(_, problem, mark, _) {
            return .failure(SourceError(file: displayName, line: mark.line, message: "YAML: \(problem)"))
        } catch {
            return .failure(SourceError(file: displayName, line: 1, message: "YAML: \(error)"))
        }
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

extension Node {
    /// The value of `key` in a mapping node.
    subscript(key key: String) -> Node? { mapping?[Node(key)] }
}
