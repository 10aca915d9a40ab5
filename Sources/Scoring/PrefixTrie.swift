/// A path-compressed binary trie (PATRICIA) of address prefixes in one flat array: a node per
/// prefix that holds data and per point where two prefixes part, not per bit. A million /24s
/// spread over the IPv4 space take about two million nodes of 20 bytes, where a node per bit
/// took six million of 12.
///
/// It stores, per prefix, an index into its owner's data (`entry`); `LatencyMap` keeps the
/// data. `Bits` is the address as an integer, most significant bit first (UInt32 for IPv4,
/// UInt128 for IPv6).
struct PrefixTrie<Bits: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    struct Node: Sendable {
        /// The prefix: its first `length` bits, the rest zero.
        var bits: Bits
        var length: UInt8
        var children: (Int32, Int32) = (-1, -1)
        var entry: Int32 = -1
    }

    /// Node 0 is the root, the prefix of length 0.
    private(set) var nodes: [Node] = [Node(bits: 0, length: 0)]

    /// Where a walk may start, per value of an address's first `indexBits` bits (a slot),
    /// encoded in one word (`Start`): from the root, where a prefix of length 1...`indexBits`
    /// on the slot's path has an entry (which the walk must visit); else at the child, on the
    /// slot's way, of the deepest node of at most `indexBits` bits on its path (a node the
    /// slot's bits choose the way from); else, when that node is `indexBits` long (the next
    /// bit chooses) or has no child that way, at that node. Empty until `buildIndex`.
    ///
    /// A walk for a /24 of a map of thousands of them otherwise steps through a dozen nodes
    /// before it gets anywhere, each a likely cache miss by the time the same client asks
    /// again (the kernel's work between queries evicts them): the first sixteen bits in one
    /// read instead (the first level of a DIR-16-8-8 table, Gupta, Lin and McKeown 1998), and
    /// the node it names is the first whose bits the walk compares: the one it would otherwise
    /// read to find that node, the fork above the slot, is not read at all (one dependent read
    /// of three before the /24's measurements, for most slots of the bench's 65 536 /24s).
    ///
    /// Kept up as prefixes are added (`node(for:)`, `setEntry`): each change recomputes the
    /// slots whose start it may change, with the function that builds them (`start(ofSlot:)`).
    private(set) var starts: [Int32] = []

    /// 16 bits for IPv4 (256 KiB of `starts`); IPv6 addresses of a map share their first bits
    /// too often (2001:…) for a first level to pay, and have none.
    static var indexBits: Int { width == 32 ? 16 : 0 }

    static var width: Int { Bits.bitWidth }

    /// A slot of `starts`, decoded.
    enum Start: Equatable {
        /// From the root.
        case root
        /// Reading this node first: the walk goes on from it.
        case at(Int32)
        /// Comparing this node first: the child, on the slot's way, of a node shorter than
        /// `indexBits`; the walk goes on as if it had come down from its parent.
        case below(Int32)

        /// -1: the root; a node ≥ 0: at it; −2 − n: below node n.
        init(_ word: Int32) {
            self = word >= 0 ? .at(word) : (word == -1 ? .root : .below(-2 - word))
        }

        var word: Int32 {
            switch self {
            case .root: -1
            case .at(let node): node
            case .below(let node): -2 - node
            }
        }
    }

    @inline(__always)
    static func bit(_ bits: Bits, _ index: Int) -> Bool {
        (bits >> (width - 1 - index)) & 1 == 1
    }

    /// `bits` with all but the first `length` cleared.
    @inline(__always)
    static func masked(_ bits: Bits, _ length: Int) -> Bits {
        length <= 0 ? 0 : bits & ~(Bits.max >> length)
    }

    /// How many leading bits `a` and `b` share.
    @inline(__always)
    static func common(_ a: Bits, _ b: Bits) -> Int { (a ^ b).leadingZeroBitCount }

    @inline(__always)
    private static func child(_ node: Node, _ right: Bool) -> Int32 { right ? node.children.1 : node.children.0 }

    private mutating func setChild(_ parent: Int, _ right: Bool, _ child: Int32) {
        if right { nodes[parent].children.1 = child } else { nodes[parent].children.0 = child }
        // The slots on this side of a node shorter than `indexBits` may start at it or at the
        // child it had there (or at none); those of a longer node start above it or read it.
        let length = Int(nodes[parent].length)
        if length < Self.indexBits {
            let side = right ? Bits(1) << (Self.width - 1 - length) : 0
            reindex(Self.masked(nodes[parent].bits, length) | side, length: length + 1)
        }
    }

    private mutating func append(_ node: Node) -> Int32 {
        nodes.append(node)
        return Int32(nodes.count - 1)
    }

    /// The node of the prefix (`bits`, `length`), made if there is none (splitting the edge
    /// it falls on).
    mutating func node(for bits: Bits, length: Int) -> Int {
        let bits = Self.masked(bits, length)
        var node = 0
        while true {
            // Here the node's prefix is a prefix of (bits, length).
            let at = Int(nodes[node].length)
            if at == length { return node }
            let right = Self.bit(bits, at)
            let next = Self.child(nodes[node], right)
            guard next >= 0 else {
                let leaf = append(Node(bits: bits, length: UInt8(length)))
                setChild(node, right, leaf)
                return Int(leaf)
            }
            let below = nodes[Int(next)]
            let shared = min(Self.common(bits, below.bits), length, Int(below.length))
            if shared == Int(below.length) {
                node = Int(next)
                continue
            }
            // The prefixes part (or the new one ends) inside the edge: a node where they do.
            let fork = append(Node(bits: Self.masked(bits, shared), length: UInt8(shared)))
            setChild(Int(fork), Self.bit(below.bits, shared), next)
            setChild(node, right, fork)
            if shared == length { return Int(fork) }
            let leaf = append(Node(bits: bits, length: UInt8(length)))
            setChild(Int(fork), Self.bit(bits, shared), leaf)
            return Int(leaf)
        }
    }

    /// The entry of exactly (`bits`, `length`), -1 when it has none.
    func entry(of bits: Bits, length: Int) -> Int32 {
        let bits = Self.masked(bits, length)
        var node = 0
        while Int(nodes[node].length) < length {
            let next = Self.child(nodes[node], Self.bit(bits, Int(nodes[node].length)))
            guard next >= 0, Self.common(bits, nodes[Int(next)].bits) >= Int(nodes[Int(next)].length),
                  Int(nodes[Int(next)].length) <= length else { return -1 }
            node = Int(next)
        }
        return Int(nodes[node].length) == length ? nodes[node].entry : -1
    }

    mutating func setEntry(_ entry: Int32, at node: Int) {
        nodes[node].entry = entry
        // An entry of at most `indexBits` bits sends the walks of its slots back to the root.
        let length = Int(nodes[node].length)
        if length >= 1, length <= Self.indexBits { reindex(nodes[node].bits, length: length) }
    }

    @inline(__always)
    private static func slot(of bits: Bits) -> Int { Int(truncatingIfNeeded: bits >> (width - indexBits)) }

    /// Makes `starts`, for a trie built and then read (`LatencyMap.compact`).
    mutating func buildIndex() {
        guard Self.indexBits > 0 else { return }
        starts = (0..<(1 << Self.indexBits)).map { start(ofSlot: $0).word }
    }

    /// Recomputes the slots of `starts` of the addresses that begin with (`bits`, `length`),
    /// if the index is built.
    private mutating func reindex(_ bits: Bits, length: Int) {
        guard !starts.isEmpty else { return }
        let first = Self.slot(of: bits)
        for slot in first..<(first + 1 << (Self.indexBits - min(length, Self.indexBits))) {
            starts[slot] = start(ofSlot: slot).word
        }
    }

    /// Where the walks of the addresses of `slot` start (`starts`), from the trie as it is.
    func start(ofSlot slot: Int) -> Start {
        let bits = Bits(truncatingIfNeeded: slot) << (Self.width - Self.indexBits)
        var node = 0
        while true {
            let current = nodes[node]
            let length = Int(current.length)
            if length > 0 && current.entry >= 0 { return .root }
            if length >= Self.indexBits { return .at(Int32(node)) }
            let next = Self.child(current, Self.bit(bits, length))
            guard next >= 0 else { return node == 0 ? .root : .at(Int32(node)) }
            let below = nodes[Int(next)]
            // A child within the slot's bits that they follow is on every address's path.
            guard Int(below.length) <= Self.indexBits, Self.common(bits, below.bits) >= Int(below.length) else {
                return .below(next)
            }
            node = Int(next)
        }
    }

    /// Calls `body` with the place of `bits`'s slot of `starts`, the walk's first read (when
    /// it reads one: `limit` deep enough, the index built), for a caller to prefetch.
    func withFirstRead(_ bits: Bits, limit: Int, _ body: (UnsafeRawPointer) -> Void) {
        guard limit >= Self.indexBits, !starts.isEmpty else { return }
        starts.withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress! + Self.slot(of: bits))) }
    }

    /// Walks the prefixes of `bits` no longer than `limit`, shortest first, calling `visit`
    /// with each one's entry and length, and returns how many leading bits of `bits` the
    /// result depended on: the ECS scope (RFC 7871 §7.2.1). That is what a walk of a trie
    /// with a node per bit would give: the bits walked, plus the next one where another
    /// prefix branches off there.
    func walk(_ bits: Bits, limit: Int, _ visit: (Int32, Int) -> Void) -> Int {
        if nodes[0].entry >= 0 { visit(nodes[0].entry, 0) }
        // Where the walk starts, from the index when it goes that deep, having visited no
        // entry on the way (`starts`): the node it is at, or a child to compare first.
        var node = 0
        var first: Int32 = -1
        if limit >= Self.indexBits, !starts.isEmpty {
            switch Start(starts[Self.slot(of: bits)]) {
            case .root: break
            case .at(let start): node = Int(start)
            case .below(let child): first = child
            }
        }
        while true {
            let next: Int32
            if first >= 0 {
                (next, first) = (first, -1)
            } else {
                let current = nodes[node]
                let at = Int(current.length)
                if at >= limit { return limit }
                let right = Self.bit(bits, at)
                next = Self.child(current, right)
                guard next >= 0 else {
                    // No prefix continues the client's way; one that goes the other way makes
                    // the next bit count.
                    return Self.child(current, !right) >= 0 ? at + 1 : at
                }
            }
            let below = nodes[Int(next)]
            let shared = Self.common(bits, below.bits)
            if shared < Int(below.length) {
                // The client leaves the edge at bit `shared`, where the prefix below goes on:
                // that bit counts, unless the client's known bits end first.
                return min(shared + 1, limit)
            }
            if Int(below.length) > limit { return limit }
            node = Int(next)
            if below.entry >= 0 { visit(below.entry, Int(below.length)) }
        }
    }

    mutating func compact() {
        buildIndex()
        guard nodes.capacity > nodes.count else { return }
        nodes = nodes.withUnsafeBufferPointer { Array($0) }
    }
}
