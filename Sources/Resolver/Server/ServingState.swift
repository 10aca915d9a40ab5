import Synchronization

/// Everything the query path reads, as one immutable value. A reload or a report builds a
/// new one and publishes it; a query reads one and uses it throughout, so it never sees half
/// of an update.
public final class ServingState: Sendable {
    public let catalog: Catalog
    /// NSID payload (RFC 5001), when configured.
    public let nsid: [UInt8]?

    public init(catalog: Catalog, nsid: [UInt8]? = nil) {
        self.catalog = catalog
        self.nsid = nsid
    }

    public static let empty = ServingState(catalog: .empty)
}

/// Holds the current `ServingState`. Readers take a reference under a lock held only for
/// the pointer copy, so a writer building the next state never blocks them.
public final class StateStore: Sendable {
    private let current: Mutex<ServingState>

    public init(_ initial: ServingState) {
        current = Mutex(initial)
    }

    public var state: ServingState { current.withLock { $0 } }

    public func publish(_ state: ServingState) {
        current.withLock { $0 = state }
    }
}
