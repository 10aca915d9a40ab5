import NIOCore
import Scoring
import Synchronization

/// What one TCP peer may hold of the server (RFC 7766 §6.2.3, RFC 9210 §4): connections
/// in total and per client address, time without a query, time to finish a message once it
/// has started, and responses not yet taken by the peer.
public struct TCPLimits: Sendable, Equatable {
    /// Close a connection after this long without a complete query (RFC 7766 §6.2.3).
    public var idleTimeout: TimeAmount
    /// Close a connection whose message has not arrived in full this long after its first
    /// byte, so a peer sending a byte at a time cannot hold a connection open.
    public var readTimeout: TimeAmount
    /// Connections beyond this are closed at once (RFC 7766 §6.2.2).
    public var maxConnections: Int
    /// Per IPv4 address or IPv6 /64, over all listening addresses.
    public var maxConnectionsPerClient: Int
    /// Responses written but not yet taken by the peer; at this many (or when the socket's
    /// buffer is full), the connection stops reading until the peer catches up, so a peer
    /// that pipelines queries but never reads cannot grow our memory.
    public var maxInFlight: Int

    public init(idleTimeout: TimeAmount = .seconds(10), readTimeout: TimeAmount = .seconds(5), maxConnections: Int = 1000,
                maxConnectionsPerClient: Int = 64, maxInFlight: Int = 64) {
        self.idleTimeout = idleTimeout
        self.readTimeout = readTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
        self.maxInFlight = maxInFlight
    }
}

/// Open TCP connections per client address, for `TCPLimits.maxConnectionsPerClient`. It
/// holds at most one entry per open connection.
final class TCPConnectionTable: Sendable {
    private let open = Mutex<[IPAddress: Int]>([:])

    /// Counts a new connection from `client`; false (and not counted) when it has `limit` already.
    func admit(_ client: IPAddress, limit: Int) -> Bool {
        open.withLock { table in
            let count = table[client, default: 0]
            guard count < limit else { return false }
            table[client] = count + 1
            return true
        }
    }

    func release(_ client: IPAddress) {
        open.withLock { table in
            guard let count = table[client] else { return }
            table[client] = count > 1 ? count - 1 : nil
        }
    }
}

/// Splits a TCP stream into DNS messages by their two-octet length prefix (RFC 1035 §4.2.2).
/// It tells the next handler when a message has started to arrive and when it is complete,
/// so that handler can time it (`TCPLimits.readTimeout`).
struct DNSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    enum Progress { case started, finished }
    private var partial = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) else {
            if buffer.readableBytes > 0 && !partial {
                partial = true
                context.fireUserInboundEventTriggered(Progress.started)
            }
            return .needMoreData
        }
        if partial {
            partial = false
            context.fireUserInboundEventTriggered(Progress.finished)
        }
        buffer.moveReaderIndex(forwardBy: 2)
        let frame = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial message at EOF is discarded.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Answers each framed query in order. Pipelined queries (RFC 7766 §6.2.1) are answered as
/// they are decoded, and the responses of one read are flushed together. When the peer
/// leaves `maxInFlight` responses unread, queries are held (at most what one socket read
/// delivered) and reading stops until it catches up.
final class TCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let store: StateStore
    private let metrics: ServerCounters
    private let maxInFlight: Int
    private var responder = Responder(memoCapacity: 0)
    private var pendingFlush = false
    private var sequence: UInt64 = 0
    private var inFlight = 0
    private var held = CircularBuffer<ByteBuffer>()
    private var paused = false
    /// A message has started to arrive and is not complete; it must be within `readTimeout`,
    /// which runs only while we read (not while paused for the peer to catch up).
    private let readTimeout: TimeAmount
    private var messageStarted = false
    private var deadline: Scheduled<Void>?

    init(store: StateStore, metrics: ServerCounters, maxInFlight: Int, readTimeout: TimeAmount) {
        self.store = store
        self.metrics = metrics
        self.maxInFlight = maxInFlight
        self.readTimeout = readTimeout
    }

    private func armDeadline(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: readTimeout) { channel.close(promise: nil) }
    }

    private func disarmDeadline() {
        deadline?.cancel()
        deadline = nil
    }

    private func mustWait(_ context: ChannelHandlerContext) -> Bool {
        inFlight >= maxInFlight || !context.channel.isWritable
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if !held.isEmpty || mustWait(context) {
            held.append(frame)
            pause(context)
            return
        }
        answer(frame, context: context)
    }

    private func answer(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let state = store.state
        sequence &+= 1
        let requestContext = RequestContext(transport: .tcp, source: IPAddress(context.channel.remoteAddress), sequence: sequence)
        let answered = frame.withUnsafeReadableBytes { packet in
            responder.respond(to: packet, context: requestContext, state: state)
        }
        metrics.record(answered: answered, transport: .tcp)
        guard answered else { return }
        var buffer = context.channel.allocator.buffer(capacity: responder.writer.count + 2)
        buffer.writeInteger(UInt16(responder.writer.count))
        buffer.writeBytes(responder.writer.bytes)
        inFlight += 1
        let promise = context.eventLoop.makePromise(of: Void.self)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.inFlight -= 1
            handler.resumeIfPossible(context)
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
        pendingFlush = true
    }

    private func pause(_ context: ChannelHandlerContext) {
        guard !paused else { return }
        paused = true
        disarmDeadline()
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        flushIfNeeded(context)
    }

    /// Answers held queries while the peer keeps up; reading resumes once none are held.
    private func resumeIfPossible(_ context: ChannelHandlerContext) {
        guard paused, context.channel.isActive else { return }
        while !held.isEmpty && !mustWait(context) {
            answer(held.removeFirst(), context: context)
        }
        flushIfNeeded(context)
        if held.isEmpty && !mustWait(context) {
            paused = false
            if messageStarted { armDeadline(context) }
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if pendingFlush {
            pendingFlush = false
            context.flush()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeIfPossible(context) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is IdleStateHandler.IdleStateEvent:
            context.close(promise: nil)
        case DNSFrameDecoder.Progress.started:
            messageStarted = true
            if !paused { armDeadline(context) }
        case DNSFrameDecoder.Progress.finished:
            messageStarted = false
            disarmDeadline()
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarmDeadline()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // One broken peer closes only its own connection.
        context.close(promise: nil)
    }
}
