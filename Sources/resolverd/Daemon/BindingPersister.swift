import Foundation
import Logging
import Resolver
import Scoring
import ServiceLifecycle

/// Keeps client bindings across restarts: `STATE/bindings.json` is written every `interval`
/// and at shutdown, atomically (write a temporary file, fsync it, rename it over the old one),
/// so a crash or a full disk leaves the previous snapshot intact. At start a missing or
/// corrupt snapshot is reported and ignored, never fatal. Expired bindings are swept here too.
struct BindingPersister: ServiceLifecycle.Service {
    let directory: String
    let store: StateStore
    let logger: Logger
    var interval: Duration = .seconds(10)

    struct Entry: Codable {
        var service: String
        var prefix: String
        var site: String
        var boundAt: Double
        var lastSeen: Double
        /// Absent in snapshots written before it was kept: a client subnet.
        var viaResolver: Bool?
        /// Queries answered from the binding: with its age, the prefix's query rate, which
        /// the load estimates read. Without it (older snapshots) a binding of hours counts
        /// one query over all that time, a small fraction of its rate, until the queries
        /// after the restart have caught up with its age.
        var queries: Int?
        /// The site the binding was moved away from, if it was.
        var previous: String?
    }

    var path: String { (directory as NSString).appendingPathComponent("bindings.json") }

    /// Reads the snapshot into the current state's table. Returns how many were restored.
    @discardableResult
    func restore() -> Int {
        guard let data = FileManager.default.contents(atPath: path) else {
            logger.info("no binding snapshot yet", metadata: ["path": "\(path)"])
            return 0
        }
        guard let entries = try? JSONDecoder().decode([Entry].self, from: data) else {
            logger.warning("binding snapshot is corrupt; starting without bindings", metadata: ["path": "\(path)"])
            return 0
        }
        let restored: [(AffinityTable.Key, Binding)] = entries.compactMap { entry in
            guard let prefix = IPPrefix(entry.prefix), entry.boundAt.isFinite, entry.lastSeen.isFinite else { return nil }
            return (AffinityTable.Key(service: entry.service, prefix: prefix),
                    Binding(site: entry.site, boundAt: entry.boundAt, lastSeen: entry.lastSeen,
                            queries: max(entry.queries ?? 1, 1), previous: entry.previous,
                            viaResolver: entry.viaResolver ?? false))
        }
        store.state.affinity.restore(restored)
        logger.info("bindings restored", metadata: ["count": "\(restored.count)"])
        return restored.count
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await pause(interval)
            sweep()
            save()
        }
        save()
    }

    func sweep() {
        let state = store.state
        let holds = Dictionary(state.steering.services.map { ($0.name, $0.bindingLifetime) }, uniquingKeysWith: { a, _ in a })
        state.affinity.expire(now: SteeringClock.now()) { holds[$0] ?? 0 }
    }

    func save() {
        let entries = store.state.affinity.entries().map { key, binding in
            Entry(service: key.service, prefix: key.prefix.description, site: binding.site,
                  boundAt: binding.boundAt, lastSeen: binding.lastSeen, viaResolver: binding.viaResolver,
                  queries: binding.queries, previous: binding.previous)
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            let data = try encoder.encode(entries)
            let temporary = path + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
                throw CocoaError(.fileWriteUnknown)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
            guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            // The previous snapshot is still in place: only the temporary file was touched,
            // and it goes too, so a full disk gets its space back.
            unlink(path + ".tmp")
            logger.error("cannot write binding snapshot; keeping the previous one",
                         metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
