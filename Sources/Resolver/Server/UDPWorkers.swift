import CUDPBatch
import NIOCore
import Scoring
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// DNS over UDP on plain threads: each worker owns one SO_REUSEPORT socket, reads a batch
/// of queries with one recvmmsg(2), answers each through its own `Responder`, and sends the
/// batch of responses with one sendmmsg(2).
///
/// This is the query path the benchmarks measure, so it has no event loop, no channel
/// pipeline and no per-datagram buffer: a batch's storage is allocated once per worker, and
/// the kernel spreads clients over the sockets by their address and port.
final class UDPWorkers: Sendable {
    /// Datagrams per system call; also the most responses one batch holds back.
    static let batchSize: Int32 = 64
    /// Per datagram, in and out. A UDP response is at most `Responder.maxUDPPayload`; a
    /// query longer than this is cut, and then answered as the malformed message it is.
    static let bufferSize: Int32 = 4096
    /// How long a worker waits in poll(2) before it looks at the stop flag again.
    static let pollMilliseconds: Int32 = 200
    /// How long a worker holds the counts of the queries it answered (`PendingCounts`) before
    /// adding them to the shared ledger and metrics: well within the second the ledger counts
    /// by, and shorter than any scrape interval.
    static let flushMilliseconds: Int32 = 10

    private let sockets: [Int32]
    private let store: StateStore
    private let counters: ServerCounters
    private let flag = StopFlag()
    private let threads = Mutex<[pthread_t]>([])

    /// Binds `perAddress` sockets on each address. Throws `DNSServer.ListenError`, closing
    /// whatever it had bound.
    init(listen: [SocketAddress], perAddress: Int, store: StateStore, counters: ServerCounters) throws {
        var sockets: [Int32] = []
        for address in listen {
            for _ in 0..<max(perAddress, 1) {
                let fd = address.withSockAddr { pointer, length in udp_batch_bind(pointer, socklen_t(length), 1) }
                guard fd >= 0 else {
                    for socket in sockets { close(socket) }
                    throw DNSServer.ListenError(address: address, underlying: SystemCallError(call: "bind", code: -fd))
                }
                sockets.append(fd)
            }
        }
        self.sockets = sockets
        self.store = store
        self.counters = counters
    }

    /// Decision-memo slots per worker (`DecisionMemo`, 64 bytes each) for `workers` workers:
    /// 131 072 (8 MiB) each up to eight workers, then 64 MiB shared out, never under 32 768
    /// (2 MiB). Each worker sees every client (SO_REUSEPORT spreads by the resolver's port), so
    /// each memo needs room for all of those that ask within a second (with two slots a set, a
    /// new client finds both taken one time in eight at three tenths full: some 40 000 clients
    /// at 8 MiB); on a machine of many cores the whole stays bounded.
    static func memoSlots(workers: Int) -> Int {
        min(1 << 17, max(1 << 15, (1 << 20) / max(workers, 1)))
    }

    /// Starts one thread per socket.
    func start() {
        threads.withLock { threads in
            let memoSlots = Self.memoSlots(workers: sockets.count)
            for fd in sockets {
                let worker = Worker(fd: fd, store: store, counters: counters, flag: flag, memoSlots: memoSlots)
                threads.append(spawnThread(name: "resolverd-udp") { worker.run() })
            }
        }
    }

    /// Stops the workers (each within one poll interval), waits for them and closes the
    /// sockets. The responses of a batch being answered are still sent.
    func stop() {
        flag.stop()
        let running = threads.withLock { threads in
            defer { threads.removeAll() }
            return threads
        }
        for thread in running { pthread_join(thread, nil) }
        for fd in sockets { close(fd) }
    }

    final class StopFlag: Sendable {
        private let stopped = Atomic<Bool>(false)
        var isStopped: Bool { stopped.load(ordering: .relaxed) }
        func stop() { stopped.store(true, ordering: .relaxed) }
    }

    /// The loop of one socket.
    private final class Worker: Sendable {
        let fd: Int32
        let store: StateStore
        let counters: ServerCounters
        let flag: StopFlag
        let memoSlots: Int

        init(fd: Int32, store: StateStore, counters: ServerCounters, flag: StopFlag, memoSlots: Int) {
            self.fd = fd
            self.store = store
            self.counters = counters
            self.flag = flag
            self.memoSlots = memoSlots
        }

        func run() {
            guard let batch = udp_batch_create(UDPWorkers.batchSize, UDPWorkers.bufferSize) else { return }
            defer { udp_batch_destroy(batch) }
            // Locals, not properties: the loop's state is this thread's alone.
            var responder = Responder(memoCapacity: memoSlots)
            responder.allocateMemo()
            responder.defersCounts = true
            var sequence: UInt64 = 0
            // A batch's datagrams as the first pass read them, for the second.
            var prepared = [FastQuery](repeating: FastQuery(), count: Int(UDPWorkers.batchSize))
            var parsed = [Bool](repeating: false, count: Int(UDPWorkers.batchSize))
            var sources = [IPAddress?](repeating: nil, count: Int(UDPWorkers.batchSize))
            // The counts held since the last flush: the state they were counted for (nil when
            // none are held), when that flush was, and the datagrams answered and dropped.
            var counted: ServingState? = nil
            var flushedAt = 0.0
            var held = (answered: 0, dropped: 0)
            func flush() {
                if let counted { responder.flushCounts(to: counted) }
                counters.record(udpAnswered: held.answered, dropped: held.dropped)
                (counted, held) = (nil, (0, 0))
            }
            while !flag.isStopped {
                // With counts held, wait no longer than a flush is due.
                let wait = counted == nil ? UDPWorkers.pollMilliseconds : UDPWorkers.flushMilliseconds
                let count = udp_batch_receive(batch, fd, wait)
                guard count > 0 else {
                    // Idle: what was counted reaches the metrics, the ledger and the bindings
                    // now, not at the next query.
                    flush()
                    responder.handOverRenewals()
                    continue
                }
                // One state and one clock reading per batch: a batch is answered from one
                // consistent snapshot, at one time (it takes well under a millisecond).
                let state = store.state
                let now = SteeringClock.now()
                // Counts go to the state they were counted for: a reload may renumber sites.
                if let previous = counted, previous !== state { flush() }
                // Two passes: every datagram read first (`prepare`, which starts fetching what
                // answering it reads), then answered, into its reply buffer.
                for index in 0..<Int(count) {
                    var length: Int32 = 0
                    let packet = UnsafeRawBufferPointer(start: udp_batch_packet(batch, Int32(index), &length), count: Int(length))
                    sources[index] = IPAddress(socketAddress: udp_batch_peer(batch, Int32(index)))
                    parsed[index] = responder.prepare(packet, source: sources[index], into: &prepared[index])
                }
                var answered = 0
                for index in 0..<Int(count) {
                    var length: Int32 = 0
                    let packet = UnsafeRawBufferPointer(start: udp_batch_packet(batch, Int32(index), &length), count: Int(length))
                    sequence &+= 1
                    let context = RequestContext(transport: .udp, source: sources[index], now: now, sequence: sequence)
                    let reply = UnsafeMutableRawBufferPointer(start: udp_batch_reply_buffer(batch, Int32(index)),
                                                              count: Int(UDPWorkers.bufferSize))
                    guard let written = responder.respond(to: packet, prepared: parsed[index] ? prepared[index] : nil, context: context,
                                                          state: state, into: reply) else { continue }
                    answered += 1
                    udp_batch_set_reply(batch, Int32(index), Int32(written))
                }
                udp_batch_send(batch, fd)
                // The batch's counts are added with those of the batches around it, at most
                // `flushMilliseconds` later: at tens of thousands of queries a second a batch is
                // a few datagrams, and adding each batch's (a lock and a dozen atomic adds on
                // lines every worker writes) cost a few per cent of the CPU of an answer.
                counted = state
                held.answered += answered
                held.dropped += Int(count) - answered
                if now - flushedAt >= Double(UDPWorkers.flushMilliseconds) / 1000 {
                    flush()
                    flushedAt = now
                }
            }
            flush()
            responder.handOverRenewals()
        }
    }
}

/// A failed system call, described the way operators read them ("Permission denied (errno: 13)").
struct SystemCallError: Error, CustomStringConvertible {
    let call: String
    let code: Int32

    var description: String { "\(call)(2) failed: \(String(cString: strerror(code))) (errno: \(code))" }
}

/// Starts a detached-until-joined POSIX thread running `body`, named `name` (at most 15
/// bytes: what `top -H` and /proc/PID/task/TID/comm show) when given.
func spawnThread(name: String? = nil, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
    let context = Unmanaged.passRetained(Box {
        if let name { nameThisThread(name) }
        body()
    }).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    precondition(result == 0, "pthread_create failed: \(result)")
    return thread
}

/// Names the calling thread (Linux keeps 15 bytes of it).
public func nameThisThread(_ name: String) {
    udp_batch_name_thread(name)
}

/// The cores this process may run on: the CPUs of its affinity mask (`taskset`, a cpuset), at
/// most `System.coreCount` (which counts cgroup quotas but not the mask). A server pinned to
/// one core of two starts one UDP worker, not two that take turns on it.
public func usableCores() -> Int {
    max(1, min(System.coreCount, Int(udp_batch_usable_cpus())))
}

/// Sets the calling thread's nice value; false when the system refused.
@discardableResult
public func niceThisThread(_ nice: Int32) -> Bool {
    udp_batch_nice_thread(nice) == 0
}

extension IPAddress {
    /// The address of a socket address from the kernel, without allocating. An IPv4 client
    /// of a dual-stack socket (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) is that IPv4 address.
    init?(socketAddress: UnsafePointer<sockaddr>?) {
        guard let socketAddress else { return nil }
        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(socketAddress).assumingMemoryBound(to: sockaddr_in.self)
            self = .v4(UInt32(bigEndian: v4.pointee.sin_addr.s_addr))
        case AF_INET6:
            let v6 = UnsafeRawPointer(socketAddress).assumingMemoryBound(to: sockaddr_in6.self)
            var storage = v6.pointee.sin6_addr
            self = withUnsafeBytes(of: &storage) { IPAddress.unmapped(v6Bytes: $0) }
        default:
            return nil
        }
    }

    /// 16 network-order bytes as an address, IPv4-mapped addresses as IPv4.
    static func unmapped(v6Bytes bytes: UnsafeRawBufferPointer) -> IPAddress {
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
        for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        if high == 0, low >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: low)) }
        return .v6(high, low)
    }
}
