import Foundation
import NIOCore
import Resolver

/// Load reports answered from a connection's raw bytes, ahead of the HTTP/1.1 decoder: the
/// one request that comes thousands of times a second skips the decoder, the conversion to
/// HTTP types, Hummingbird's router and the encoder, and its answer is a few constant bytes.
/// At 10 000 reports a second on the DNS server's core, those layers cost about 40 µs a
/// report, a third to a half of the core's queries (bench/reports).
///
/// A connection starts here. Each whole report at the front of its bytes
/// (`ReportRequest.parse`) is judged by the router's own code (`ControlAPI.acceptLoad`), so the
/// two ways cannot differ, and answered in order; the answers of one read are flushed
/// together. At the first request that is not a plain report, this handler hands that request
/// and everything after it to the decoder and from then on only passes bytes through: the
/// decoder sees whole requests from a request boundary, as if it had read the connection
/// from there, and answers them in order after the reports that came before (RFC 9112 §9.3.2).
final class ReportFastPath: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let api: ControlAPI
    /// Bytes read and not yet answered or passed on (the start of a request).
    private var unread: ByteBuffer?
    private enum Mode {
        /// Reports are answered here.
        case reports
        /// From the first request that is not a plain report on: everything is the decoder's.
        case passing
        /// A report asked to close the connection: nothing more is read.
        case closing
    }
    private var mode = Mode.reports
    /// Answers written since the last flush.
    private var unflushed = false
    /// The principal of the `Authorization` value last seen on this connection, and the token
    /// store it was looked up in: a reporting agent sends the same token every time, so the
    /// digest is computed once per connection, not once per report. A reload's new store is a
    /// new generation, which looks the token up again.
    private var lastAuthorization: [UInt8] = []
    private var lastPrincipal: Principal? = nil
    private var lastGeneration = -1

    private let pacer: ControlLoopPacer?

    init(api: ControlAPI, pacer: ControlLoopPacer? = nil) {
        self.api = api
        self.pacer = pacer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch mode {
        case .reports: break
        case .passing: return context.fireChannelRead(data)
        case .closing: return
        }
        var bytes = unwrapInboundIn(data)
        if var held = unread {
            held.writeBuffer(&bytes)
            bytes = held
        }
        unread = nil
        // The answers of this read, in one buffer written once (a write through the pipeline
        // per answer cost more than the answer), before anything the decoder answers later.
        var answers: ByteBuffer? = nil
        defer { send(context, answers) }
        while bytes.readableBytes > 0 {
            let parse = bytes.withUnsafeReadableBytes { ReportRequest.parse($0) }
            switch parse {
            case .incomplete:
                unread = bytes
                return
            case .other:
                send(context, answers.take())
                mode = .passing
                context.fireChannelRead(wrapInboundOut(bytes))
                return
            case .report(let request):
                var out = answers.take() ?? context.channel.allocator.buffer(capacity: 256)
                answer(request, bytes, into: &out)
                bytes.moveReaderIndex(forwardBy: request.length)
                if request.close {
                    unflushed = false
                    context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                    context.close(promise: nil)
                    mode = .closing
                    return
                }
                answers = out
            }
        }
    }

    private func send(_ context: ChannelHandlerContext, _ answers: ByteBuffer?) {
        guard let answers else { return }
        context.write(wrapOutboundOut(answers), promise: nil)
        unflushed = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        pacer?.readCompleted(on: context.eventLoop, connection: ObjectIdentifier(context.channel))
        context.fireChannelReadComplete()
    }

    /// The end of the input with a request begun: the decoder gets what there is, and reacts to
    /// the cut request as it would have.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        handOverUnread(context)
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handOverUnread(context)
        context.fireChannelInactive()
    }

    private func handOverUnread(_ context: ChannelHandlerContext) {
        guard case .reports = mode, let held = unread, held.readableBytes > 0 else { return }
        unread = nil
        mode = .passing
        context.fireChannelRead(wrapInboundOut(held))
        context.fireChannelReadComplete()
    }

    /// Judges one report and writes its answer to `out`.
    private func answer(_ request: ReportRequest, _ bytes: ByteBuffer, into out: inout ByteBuffer) {
        // The body is read where it lies in the connection's buffer.
        let refusal = bytes.withUnsafeReadableBytes { raw -> ControlAPI.Refusal? in
            let site = String(decoding: raw[request.site], as: UTF8.self)
            return api.acceptLoad(site: site, principal: authenticate(raw, request.authorization),
                                  body: UnsafeRawBufferPointer(rebasing: raw[request.body]), method: "PUT",
                                  path: "/v1/sites/\(site)/load")
        }
        if let refusal {
            let json = ControlAPI.encode(["error": refusal.reason])
            out.writeString("HTTP/1.1 \(refusal.status.code) \(refusal.status.reasonPhrase)\r\nserver: resolverd\r\n")
            out.writeBytes(date.line(at: time(nil)))
            out.writeString("content-type: application/json\r\ncontent-length: \(json.count)\r\n")
            if request.close { out.writeString("connection: close\r\n") }
            out.writeString("\r\n")
            out.writeBytes(json)
        } else {
            out.writeBytes(Self.noContent)
            out.writeBytes(date.line(at: time(nil)))
            if request.close { out.writeBytes(Self.close) }
            out.writeBytes(Self.end)
        }
    }

    private static let noContent = Array("HTTP/1.1 204 No Content\r\nserver: resolverd\r\n".utf8)
    private static let close = Array("connection: close\r\n".utf8)
    private static let end = Array("\r\n".utf8)
    private var date = HTTPDate()

    /// The principal of the `Authorization` value at `range`, from the last one when the value
    /// and the token store are the same.
    private func authenticate(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>?) -> Principal? {
        guard let range else { return nil }
        let (store, generation) = api.tokens.currentWithGeneration
        let value = UnsafeRawBufferPointer(rebasing: raw[range])
        if generation == lastGeneration, value.hasSameBytes(as: lastAuthorization) { return lastPrincipal }
        lastAuthorization = Array(value)
        lastGeneration = generation
        lastPrincipal = store.authenticate(authorization: String(decoding: value, as: UTF8.self))
        return lastPrincipal
    }
}

/// Lets the control API's event loop read at most once per `interval` while requests keep
/// coming on more than one connection: after a read, the loop sleeps out the rest of the
/// interval, and the requests that arrive meanwhile on every connection are read and answered
/// together in its next turn. An idle loop answers at once; a busy one adds at most `interval`
/// to an answer. On a core shared with the DNS workers this turns thousands of wake-ups a
/// second, each preempting a worker and evicting its caches, into at most 1 / `interval`; and
/// the requests a connection pipelined meanwhile are read with one read and answered with one
/// write. At 10 000 reports a second over 16 connections on this project's 2-core VM, the
/// thread's CPU per report was 25 µs reading at once, 15 µs at 2 ms, 10 µs at 5 ms and 6.5 µs
/// at 10 ms (before reports were read in place); with reports read in place and DNS at its
/// maximum rate, 7.3–9.2 µs at 2 ms and 5.9–6.8 µs at 4 ms, the default since: most of what
/// is left is the kernel's, a read and a write per connection and turn, which more reports per
/// turn share.
///
/// A client gets at most its requests in flight per interval while it shares the loop, so a
/// lone client (one connection, as `resolverd report` or a test) is never paced: one request
/// at a time it would get only 1 / `interval` a second, and there is nothing to batch it with.
final class ControlLoopPacer: @unchecked Sendable {
    // Touched only on the one event loop of the control API (`readCompleted` checks).
    private var scheduled = false
    private var lastTurn = 0.0
    /// The connection read last, and when a read last came from another one than the one
    /// before it.
    private var lastConnection: ObjectIdentifier? = nil
    private var sharedAt = -Double.infinity
    let interval: Double

    init(interval: Double) {
        self.interval = interval
    }

    func readCompleted(on loop: any EventLoop, connection: ObjectIdentifier) {
        loop.preconditionInEventLoop()
        guard interval > 0 else { return }
        let now = SteeringClock.now()
        if let lastConnection, lastConnection != connection { sharedAt = now }
        lastConnection = connection
        guard !scheduled else { return }
        scheduled = true
        // Runs after this turn's reads and flushes (NIO runs tasks after handling I/O events).
        loop.execute { [self] in
            let now = SteeringClock.now()
            if now - sharedAt < interval {
                let wait = lastTurn + interval - now
                if wait > 0 { usleep(useconds_t(wait * 1_000_000)) }
                lastTurn = max(now, lastTurn + interval)
            } else {
                lastTurn = now
            }
            scheduled = false
        }
    }
}

/// The `date` field of a response (RFC 9110 §6.6.1: an origin server with a clock sends one),
/// in the IMF-fixdate form (§5.6.7), written anew once a second.
struct HTTPDate {
    private var second = -1
    private var bytes: [UInt8] = []

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `date: Sun, 06 Nov 1994 08:49:37 GMT` and CRLF, for the Unix time `now`.
    mutating func line(at now: time_t) -> [UInt8] {
        if Int(now) != second {
            second = Int(now)
            bytes = Array("date: \(Self.format(now))\r\n".utf8)
        }
        return bytes
    }

    static func format(_ now: time_t) -> String {
        var seconds = now
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
